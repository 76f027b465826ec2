/** SeqIntervalSet and SeqLedger: properties over any order and repetition, and persistence. */

import { freshPgSchema, type PgSchema, requireService } from "@coldtrace/testkit";
import fc from "fast-check";
import type pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createPgPool } from "../../src/storage/postgres.ts";
import {
  createPgSeqLedger,
  createSeqLedger,
  createSqliteSeqLedger,
  memoryLedgerBackend,
  type SeqInterval,
  SeqIntervalSet,
  type SeqLedgerBackend,
} from "../../src/storage/seq-ledger.ts";
import { openSqlite } from "../../src/storage/sqlite.ts";

/** The reference: sort the distinct seqs and cut where they are not consecutive. */
function reference(seqs: readonly number[]): SeqInterval[] {
  const sorted = [...new Set(seqs)].sort((a, b) => a - b);
  const out: [number, number][] = [];
  for (const s of sorted) {
    const last = out.at(-1);
    if (last && last[1] + 1 === s) last[1] = s;
    else out.push([s, s]);
  }
  return out;
}

// Nearly contiguous seqs with holes, repeats and shuffles, like an agent's resends.
const seqs = fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 400 });

describe("SeqIntervalSet", () => {
  it("merges adjacent seqs and reports each seq new exactly once", () => {
    const set = new SeqIntervalSet();
    expect([5, 7, 6, 6, 1, 3, 2, 9].map((s) => set.add(s))).toEqual([
      true,
      true,
      true,
      false,
      true,
      true,
      true,
      true,
    ]);
    expect(set.intervals()).toEqual([
      [1, 3],
      [5, 7],
      [9, 9],
    ]);
    expect(set.has(4)).toBe(false);
    expect(set.has(6)).toBe(true);
  });

  it("gives the same intervals whatever the order and repetition of seqs", () => {
    fc.assert(
      fc.property(seqs, fc.integer(), (xs, seed) => {
        const shuffled = fc.sample(fc.shuffledSubarray(xs, { minLength: xs.length, maxLength: xs.length }), {
          seed,
          numRuns: 1,
        })[0] as number[];
        const a = new SeqIntervalSet();
        const b = new SeqIntervalSet();
        const newA = xs.filter((s) => a.add(s));
        const newB = shuffled.filter((s) => b.add(s));
        expect(a.intervals()).toEqual(reference(xs));
        expect(b.intervals()).toEqual(a.intervals());
        // "new" exactly once per distinct seq
        expect([...newA].sort((x, y) => x - y)).toEqual([...new Set(xs)].sort((x, y) => x - y));
        expect(newB).toHaveLength(new Set(xs).size);
      }),
    );
  });

  it("rebuilds the same set from overlapping intervals (as loaded from a database)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 20 }))),
        (pairs) => {
          const intervals = pairs.map(([lo, len]) => [lo, lo + len] as const);
          const all = intervals.flatMap(([lo, hi]) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i));
          expect(new SeqIntervalSet(intervals).intervals()).toEqual(reference(all));
        },
      ),
    );
  });
});

describe("SeqLedger", () => {
  const k = (agentId: string, seq: number) => ({ agentId, seq });

  it("reports unseen items once, and nothing of a batch that was committed", async () => {
    fc.assert(
      await fc.asyncProperty(
        fc.array(
          fc.array(fc.tuple(fc.constantFrom("a1", "a2"), fc.integer({ min: 1, max: 60 })), { maxLength: 40 }),
          {
            maxLength: 8,
          },
        ),
        async (batches) => {
          const ledger = createSeqLedger();
          const reported: string[] = [];
          for (const batch of batches) {
            const items = batch.map(([a, s]) => k(a, s));
            const fresh = await ledger.unseen(items);
            await ledger.commit(fresh);
            reported.push(...fresh.map((i) => `${i.agentId}/${i.seq}`));
          }
          const distinct = new Set(batches.flat().map(([a, s]) => `${a}/${s}`));
          expect(reported.sort()).toEqual([...distinct].sort());
          for (const agent of ["a1", "a2"]) {
            const agentSeqs = batches
              .flat()
              .filter(([a]) => a === agent)
              .map(([, s]) => s);
            expect(await ledger.intervals(agent)).toEqual(reference(agentSeqs));
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it("does not record anything until commit, and keeps the old state if saving fails", async () => {
    const inner = memoryLedgerBackend();
    let fail = false;
    const backend: SeqLedgerBackend = {
      load: inner.load,
      async save(changes) {
        if (fail) throw Object.assign(new Error("disk full"), { code: "CT_STORE_IO" });
        await inner.save(changes);
      },
    };
    const ledger = createSeqLedger(backend);
    expect(await ledger.unseen([k("a", 1), k("a", 2), k("a", 1)])).toEqual([k("a", 1), k("a", 2)]);
    expect(await ledger.unseen([k("a", 1)])).toEqual([k("a", 1)]);
    await ledger.commit([k("a", 1), k("a", 2)]);
    fail = true;
    await expect(ledger.commit([k("a", 3)])).rejects.toMatchObject({ code: "CT_STORE_IO" });
    expect(await ledger.unseen([k("a", 2), k("a", 3)])).toEqual([k("a", 3)]);
    expect(await ledger.intervals("a")).toEqual([[1, 2]]);
  });

  it("reloads from SQLite exactly the intervals it holds in memory, after any commits", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.integer({ min: 1, max: 80 }), { maxLength: 30 }), { maxLength: 10 }),
        async (batches) => {
          const db = openSqlite(":memory:");
          try {
            const ledger = createSqliteSeqLedger(db);
            for (const batch of batches) {
              await ledger.commit(await ledger.unseen(batch.map((s) => k("a", s))));
            }
            const reloaded = createSqliteSeqLedger(db);
            expect(await reloaded.intervals("a")).toEqual(await ledger.intervals("a"));
            expect(await reloaded.intervals("a")).toEqual(reference(batches.flat()));
            const rows = db.prepare("SELECT lo, hi FROM seq_ledger WHERE agent_id = 'a' ORDER BY lo").all();
            expect(rows.map((r) => [r.lo, r.hi])).toEqual(reference(batches.flat()));
          } finally {
            db.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("persists intervals in SQLite across a restart", async () => {
    const db = openSqlite(":memory:");
    const first = createSqliteSeqLedger(db);
    await first.commit([1, 2, 3, 5, 6, 10].map((s) => k("agent-1", s)));
    await first.commit([4].map((s) => k("agent-1", s)));
    const second = createSqliteSeqLedger(db);
    expect(await second.intervals("agent-1")).toEqual([
      [1, 6],
      [10, 10],
    ]);
    expect(await second.unseen([k("agent-1", 6), k("agent-1", 7), k("agent-2", 6)])).toEqual([
      k("agent-1", 7),
      k("agent-2", 6),
    ]);
    expect(db.prepare("SELECT count(*) AS n FROM seq_ledger").get()).toEqual({ n: 2 });
    db.close();
  });
});

const postgres = await requireService("postgres");
describe.skipIf(!postgres.available)(`SeqLedger on PostgreSQL ${postgres.reason}`, () => {
  let schema: PgSchema | undefined;
  let pool: pg.Pool | undefined;
  afterAll(async () => {
    await pool?.end();
    await schema?.drop();
  });

  it("persists intervals across a restart, with seqs beyond 2^31", async () => {
    schema = await freshPgSchema("ct_ledger");
    pool = createPgPool(schema.connectionString);
    const big = 2 ** 40;
    const first = await createPgSeqLedger(pool);
    await first.commit([big, big + 1, big + 3, 7].map((s) => ({ agentId: "a", seq: s })));
    const second = await createPgSeqLedger(pool);
    expect(await second.intervals("a")).toEqual([
      [7, 7],
      [big, big + 1],
      [big + 3, big + 3],
    ]);
    // Filling the hole merges two intervals: two rows out, one row in.
    await second.commit([
      { agentId: "a", seq: big + 2 },
      { agentId: "a", seq: 8 },
    ]);
    const third = await createPgSeqLedger(pool);
    expect(await third.intervals("a")).toEqual([
      [7, 8],
      [big, big + 3],
    ]);
    const { rows } = await pool.query("SELECT lo, hi FROM seq_ledger WHERE agent_id = 'a' ORDER BY lo");
    expect(rows.map((r) => [Number(r.lo), Number(r.hi)])).toEqual([
      [7, 8],
      [big, big + 3],
    ]);
  });
});
