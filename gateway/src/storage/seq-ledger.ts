/**
 * SeqLedger: which (agentId, seq) pairs a store already holds, for backends that cannot say
 * "was this new" themselves (InfluxDB 1.x overwrites a point with the same series and time).
 *
 * Agents number readings 1, 2, 3 … and resend after a lost PUBACK, so the seen seqs of one agent
 * are nearly contiguous: a handful of merged intervals, e.g. a1: [1, 90412], [90450, 91003].
 * The intervals live in memory and in the record database (SQLite or PostgreSQL), table
 * `seq_ledger(agent_id, lo, hi)`; a commit deletes the intervals that changed and inserts
 * their successors (usually one row out, one row in).
 *
 *   store.append(batch)
 *     fresh = ledger.unseen(batch)        pure lookup, first copy of a repeat within the batch
 *     write fresh to the backend          (idempotent: an identical point overwrites itself)
 *     ledger.commit(fresh)                only after the write succeeded
 *
 * A crash between write and commit loses nothing: on the agent's resend the readings look
 * unseen, are written again identically, and are committed then (reported as inserted twice,
 * which is why consumers of `inserted` must tolerate an at-least-once repeat after a crash).
 *
 * One ledger per store and process: two gateway instances sharing one Influx database each
 * keep their own cache, so a reading ingested by both may be reported new by both.
 */
import type { DatabaseSync } from "node:sqlite";
import type pg from "pg";
import { num } from "./rows.ts";
import { pgTransaction } from "./sql/database.ts";
import { storeError } from "./sql/errors.ts";
import { databaseLock } from "./sql/lock.ts";
import { migratePostgres, migrateSqlite } from "./sql/migrate.ts";

/** Inclusive [lo, hi]. */
export type SeqInterval = readonly [lo: number, hi: number];

/** Sorted, disjoint, non-adjacent inclusive intervals of integers. */
export class SeqIntervalSet {
  readonly #iv: [number, number][] = [];

  constructor(intervals: Iterable<SeqInterval> = []) {
    for (const [lo, hi] of intervals) this.#addRange(lo, hi);
  }

  /** Adds every seq of [lo, hi], filling the holes between existing intervals. */
  #addRange(lo: number, hi: number): void {
    for (let s = lo; s <= hi; ) {
      const i = this.#firstAbove(s);
      const prev = this.#iv[i - 1];
      if (prev && prev[1] >= s) {
        s = prev[1] + 1;
        continue;
      }
      const next = this.#iv[i];
      const end = next ? Math.min(hi, next[0] - 1) : hi;
      this.#insert(i, s, end);
      s = end + 1;
    }
  }

  /** Index of the first interval whose lo is greater than seq (binary search). */
  #firstAbove(seq: number): number {
    let a = 0;
    let b = this.#iv.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if ((this.#iv[m] as [number, number])[0] > seq) b = m;
      else a = m + 1;
    }
    return a;
  }

  /** Insert [lo, hi] at index i (it overlaps nothing), merging with touching neighbours. */
  #insert(i: number, lo: number, hi: number): void {
    const prev = this.#iv[i - 1];
    const next = this.#iv[i];
    const joinPrev = prev !== undefined && prev[1] + 1 === lo;
    const joinNext = next !== undefined && next[0] - 1 === hi;
    if (joinPrev && joinNext) {
      prev[1] = next[1];
      this.#iv.splice(i, 1);
    } else if (joinPrev) {
      prev[1] = hi;
    } else if (joinNext) {
      next[0] = lo;
    } else {
      this.#iv.splice(i, 0, [lo, hi]);
    }
  }

  has(seq: number): boolean {
    const prev = this.#iv[this.#firstAbove(seq) - 1];
    return prev !== undefined && prev[1] >= seq;
  }

  /** Adds seq; true when it was not in the set before. */
  add(seq: number): boolean {
    const i = this.#firstAbove(seq);
    const prev = this.#iv[i - 1];
    if (prev !== undefined && prev[1] >= seq) return false;
    this.#insert(i, seq, seq);
    return true;
  }

  intervals(): SeqInterval[] {
    return this.#iv.map(([lo, hi]) => [lo, hi] as const);
  }

  get size(): number {
    return this.#iv.length;
  }
}

export interface IntervalChange {
  removed: readonly SeqInterval[];
  added: readonly SeqInterval[];
}

/** The intervals to delete and insert to turn `before` into `after`. */
export function diffIntervals(before: readonly SeqInterval[], after: readonly SeqInterval[]): IntervalChange {
  const key = (i: SeqInterval) => `${i[0]}:${i[1]}`;
  const a = new Set(after.map(key));
  const b = new Set(before.map(key));
  return { removed: before.filter((i) => !a.has(key(i))), added: after.filter((i) => !b.has(key(i))) };
}

/** Where a ledger keeps its intervals between restarts. */
export interface SeqLedgerBackend {
  load(agentId: string): Promise<SeqInterval[]>;
  /**
   * Apply per-agent changes atomically: delete the `removed` intervals (by agent and lo), insert
   * the `added` ones. A commit usually extends one interval: one row out, one row in.
   */
  save(changes: ReadonlyMap<string, IntervalChange>): Promise<void>;
}

export interface SeqKey {
  agentId: string;
  seq: number;
}

export interface SeqLedger {
  /** The items whose (agentId, seq) is not committed yet, in input order, first copy of a repeat only. Records nothing. */
  unseen<T extends SeqKey>(items: readonly T[]): Promise<T[]>;
  /** Bring these agents' intervals into memory; `seen` then answers for them without waiting. */
  load(agentIds: Iterable<string>): Promise<void>;
  /** Whether (agentId, seq) is committed. Only for agents loaded by `load` (or an earlier call). */
  seen(agentId: string, seq: number): boolean;
  /** Record items as stored. Call only after the backend write succeeded. Commits run one at a time. */
  commit(items: readonly SeqKey[]): Promise<void>;
  /** The committed intervals of one agent. */
  intervals(agentId: string): Promise<SeqInterval[]>;
}

export function createSeqLedger(backend: SeqLedgerBackend = memoryLedgerBackend()): SeqLedger {
  const cache = new Map<string, SeqIntervalSet>();
  async function setOf(agentId: string): Promise<SeqIntervalSet> {
    let set = cache.get(agentId);
    if (!set) {
      const loaded = new SeqIntervalSet(await backend.load(agentId));
      // Another call may have loaded it meanwhile; keep the first so no commit is lost.
      set = cache.get(agentId) ?? loaded;
      cache.set(agentId, set);
    }
    return set;
  }
  // Commits are serialised: each builds on the cache the previous one published, so two
  // overlapping commits for one agent cannot overwrite each other's intervals.
  let commits: Promise<unknown> = Promise.resolve();
  async function commitNow(items: readonly SeqKey[]): Promise<void> {
    const next = new Map<string, SeqIntervalSet>();
    for (const item of items) {
      if (!next.has(item.agentId)) {
        next.set(item.agentId, new SeqIntervalSet((await setOf(item.agentId)).intervals()));
      }
    }
    for (const item of items) (next.get(item.agentId) as SeqIntervalSet).add(item.seq);
    // Persist first, then publish to the cache: a failed save leaves the ledger as it was.
    const changes = new Map<string, IntervalChange>();
    for (const [agentId, set] of next) {
      changes.set(agentId, diffIntervals(cache.get(agentId)?.intervals() ?? [], set.intervals()));
    }
    await backend.save(changes);
    for (const [agentId, set] of next) cache.set(agentId, set);
  }
  const ledger: SeqLedger = {
    async unseen(items) {
      // One lookup per agent, not per item: a batch holds one or a few agents.
      await ledger.load(items.map((i) => i.agentId));
      const out: (typeof items)[number][] = [];
      const inBatch = new Map<string, Set<number>>();
      for (const item of items) {
        if (ledger.seen(item.agentId, item.seq)) continue;
        let seen = inBatch.get(item.agentId);
        if (!seen) {
          seen = new Set();
          inBatch.set(item.agentId, seen);
        }
        if (seen.has(item.seq)) continue;
        seen.add(item.seq);
        out.push(item);
      }
      return out;
    },
    async load(agentIds) {
      for (const agentId of new Set(agentIds)) if (!cache.has(agentId)) await setOf(agentId);
    },
    seen(agentId, seq) {
      const set = cache.get(agentId);
      if (!set) throw new Error(`SeqLedger.seen: agent ${agentId} not loaded; call load() first`);
      return set.has(seq);
    },
    commit(items) {
      if (items.length === 0) return Promise.resolve();
      const run = () => commitNow(items);
      const done = commits.then(run, run);
      commits = done.catch(() => {});
      return done;
    },
    async intervals(agentId) {
      return (await setOf(agentId)).intervals();
    },
  };
  return ledger;
}

export function memoryLedgerBackend(): SeqLedgerBackend {
  const saved = new Map<string, SeqInterval[]>();
  return {
    async load(agentId) {
      return saved.get(agentId) ?? [];
    },
    async save(changes) {
      for (const [agentId, { removed, added }] of changes) {
        const gone = new Set(removed.map((i) => i[0]));
        const kept = (saved.get(agentId) ?? []).filter((i) => !gone.has(i[0]));
        saved.set(
          agentId,
          [...kept, ...added].sort((x, y) => x[0] - y[0]),
        );
      }
    },
  };
}

const SEQ_LEDGER_MIGRATION =
  "CREATE TABLE seq_ledger (agent_id TEXT NOT NULL, lo BIGINT NOT NULL, hi BIGINT NOT NULL, PRIMARY KEY (agent_id, lo))";

function intervalsFromRows(backend: "sqlite" | "postgres", rows: Record<string, unknown>[]): SeqInterval[] {
  return rows.map(
    (r) => [num(backend, "seq_ledger", "lo", r.lo), num(backend, "seq_ledger", "hi", r.hi)] as const,
  );
}

export function sqliteLedgerBackend(db: DatabaseSync): SeqLedgerBackend {
  migrateSqlite(db, "storage.seq_ledger", [SEQ_LEDGER_MIGRATION]);
  const lock = databaseLock(db);
  const select = db.prepare("SELECT lo, hi FROM seq_ledger WHERE agent_id = ? ORDER BY lo");
  const del = db.prepare("DELETE FROM seq_ledger WHERE agent_id = ? AND lo = ? AND hi = ?");
  // Loading merges overlapping rows, so a conflicting row (another writer) is widened, not lost.
  const ins = db.prepare(
    "INSERT INTO seq_ledger (agent_id, lo, hi) VALUES (?, ?, ?) ON CONFLICT (agent_id, lo) DO UPDATE SET hi = max(hi, excluded.hi)",
  );
  return {
    async load(agentId) {
      try {
        return intervalsFromRows("sqlite", select.all(agentId) as Record<string, unknown>[]);
      } catch (err) {
        throw storeError("sqlite", "load seq ledger", err, { agentId });
      }
    },
    // The database's one lock (sql/lock.ts): never inside another writer's open transaction.
    save: (changes) =>
      lock.lock(async () => {
        try {
          db.exec("BEGIN IMMEDIATE");
          try {
            for (const [agentId, { removed, added }] of changes) {
              for (const [lo, hi] of removed) del.run(agentId, lo, hi);
              for (const [lo, hi] of added) ins.run(agentId, lo, hi);
            }
            db.exec("COMMIT");
          } catch (err) {
            if (db.isTransaction) db.exec("ROLLBACK");
            throw err;
          }
        } catch (err) {
          throw storeError("sqlite", "save seq ledger", err, { agents: changes.size });
        }
      }),
  };
}

export async function pgLedgerBackend(pool: pg.Pool): Promise<SeqLedgerBackend> {
  await migratePostgres(pool, "storage.seq_ledger", [SEQ_LEDGER_MIGRATION]);
  return {
    async load(agentId) {
      try {
        const res = await pool.query("SELECT lo, hi FROM seq_ledger WHERE agent_id = $1 ORDER BY lo", [
          agentId,
        ]);
        return intervalsFromRows("postgres", res.rows);
      } catch (err) {
        throw storeError("postgres", "load seq ledger", err, { agentId });
      }
    },
    async save(changes) {
      try {
        await pgTransaction(pool, async (client) => {
          for (const [agentId, { removed, added }] of changes) {
            if (removed.length > 0) {
              await client.query(
                "DELETE FROM seq_ledger AS l USING unnest($2::bigint[], $3::bigint[]) AS t(lo, hi) WHERE l.agent_id = $1 AND l.lo = t.lo AND l.hi = t.hi",
                [agentId, removed.map((i) => i[0]), removed.map((i) => i[1])],
              );
            }
            if (added.length > 0) {
              // Loading merges overlapping rows, so a conflicting row (another writer) is widened, not lost.
              await client.query(
                `INSERT INTO seq_ledger (agent_id, lo, hi) SELECT $1, lo, hi FROM unnest($2::bigint[], $3::bigint[]) AS t(lo, hi)
                 ON CONFLICT (agent_id, lo) DO UPDATE SET hi = GREATEST(seq_ledger.hi, excluded.hi)`,
                [agentId, added.map((i) => i[0]), added.map((i) => i[1])],
              );
            }
          }
        });
      } catch (err) {
        throw storeError("postgres", "save seq ledger", err, { agents: changes.size });
      }
    },
  };
}

export function createSqliteSeqLedger(db: DatabaseSync): SeqLedger {
  return createSeqLedger(sqliteLedgerBackend(db));
}

export async function createPgSeqLedger(pool: pg.Pool): Promise<SeqLedger> {
  return createSeqLedger(await pgLedgerBackend(pool));
}
