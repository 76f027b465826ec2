/**
 * The lots service contract suite, run against every record backend (sqlite.test.ts,
 * postgres.test.ts): ledger from shuffled movements, exposure of lots moved partway through an
 * excursion, budget across fridge → box → fridge with late box data, policy and states, CSV
 * import, REST plugin. Readings come from the real SQLite ReadingStore.
 */
import { type ExcursionEvent, formatTopic, type Movement } from "@coldtrace/protocol";
import fc from "fast-check";
import Fastify from "fastify";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLotService, type LotService, lotIntervals, lotsPlugin } from "../../src/lots/index.ts";
import { lotsDdl } from "../../src/lots/schema.ts";
import { type RecordDb, sqlDatabase } from "../../src/storage/sql/database.ts";
import { createSqliteReadingStore, openSqlite } from "../../src/storage/sqlite.ts";
import type { ReadingStore } from "../../src/storage/types.ts";

const T0 = Date.UTC(2026, 10, 20, 8, 0, 0);
const MIN = 60_000;
let counter = 0;
/** Unique ids per test, so suites and runs never see each other's rows. */
export function uid(prefix: string): string {
  counter++;
  return `${prefix}-${process.pid}-${counter}-${Math.floor(Math.random() * 1e6)}`;
}

export interface Clock {
  t: number;
  now(): number;
}

function mv(
  p: Partial<Movement> & Pick<Movement, "movementId" | "kind" | "lotId" | "occurredAt" | "quantity">,
): Movement {
  return { v: 1, siteId: "site-1", sku: "REAG-CRP-100", ...p } as Movement;
}

function excursion(p: {
  id: string;
  siteId?: string;
  unitId: string;
  startedAt: number;
  endedAt: number | null;
  tier?: "alert" | "action";
  side?: "high" | "low";
}): ExcursionEvent {
  return {
    v: 1,
    eventId: `${p.id}-evt`,
    siteId: p.siteId ?? "site-1",
    at: p.endedAt ?? p.startedAt,
    type: p.endedAt === null ? "excursion.opened" : "excursion.closed",
    excursionId: p.id,
    unitId: p.unitId,
    unitKind: "fridge",
    side: p.side ?? "high",
    tier: p.tier ?? "action",
    startedAt: p.startedAt,
    endedAt: p.endedAt,
    durationMs: p.endedAt === null ? 0 : p.endedAt - p.startedAt,
    peakC: 11,
    troughC: 8.1,
    degreeMinutes: 10,
    minutesBeyond: { alert: 1, action: 1 },
    mktC: 9,
  };
}

export function lotsSuite(
  name: string,
  makeDb: () => Promise<{ db: RecordDb; close(): Promise<void> }>,
): void {
  describe(`lots service: ${name}`, () => {
    let handle: { db: RecordDb; close(): Promise<void> };
    let readings: ReadingStore;
    let service: LotService;
    const clock: Clock = { t: T0 + 30 * 24 * 60 * MIN, now: () => clock.t };
    let seq = 1;

    /** One reading per minute per probe, temperature from fn(minute). */
    async function record(unitId: string, from: number, to: number, tempC: (t: number) => number) {
      const rows = [];
      for (let t = from; t < to; t += MIN) {
        rows.push({
          agentId: `agent-${unitId}`,
          seq: seq++,
          siteId: "site-1",
          unitId,
          probeId: `${unitId}-p1`,
          observedAt: t,
          receivedAt: t,
          tempC: tempC(t),
          quality: "ok" as const,
          backfill: false,
        });
      }
      await readings.append(rows);
    }

    beforeAll(async () => {
      handle = await makeDb();
      readings = await createSqliteReadingStore(openSqlite(":memory:"));
      service = await createLotService({
        db: handle.db,
        readings,
        clock,
        log: pino({ level: "silent" }),
        unitLimits: () => ({ high: 8, low: 2 }),
      });
      await service.upsertProduct({
        sku: "REAG-CRP-100",
        name: "CRP reagent 100 tests",
        storageClass: "2-8C",
        budgetMinutes: { high: 60, low: 30 },
      });
    });
    afterAll(async () => {
      await handle?.close();
    });

    it("keeps its schema and the outbox's in the migration runner", async () => {
      const versions = await sqlDatabase(handle.db).all<{ module: string; version: number }>(
        "SELECT module, version FROM schema_migrations WHERE module IN ('lots', 'outbox') ORDER BY module, version",
      );
      expect(versions.map((v) => `${v.module}@${Number(v.version)}`)).toEqual([
        "lots@1",
        "lots@2",
        "lots@3",
        "outbox@1",
      ]);
    });

    it("takes over a database whose lots tables were made before the migration runner", async () => {
      const old = await makeDb();
      try {
        // What earlier builds ran at every start: the DDL itself, no schema_migrations rows.
        const sql = sqlDatabase(old.db);
        await sql.transaction(async (tx) => {
          for (const stmt of lotsDdl.split(";").filter((st) => st.trim() !== "")) await tx.run(stmt);
        });
        await sql.run(
          "INSERT INTO lot_products (sku, name, storage_class, do_not_freeze, updated_at) VALUES (?, ?, ?, ?, ?)",
          ["OLD-SKU", "made by an earlier build", "2-8C", 1, T0],
        );
        await createLotService({
          db: old.db,
          readings,
          clock,
          log: pino({ level: "silent" }),
          unitLimits: () => ({ high: 8, low: 2 }),
        });
        const rows = await sql.all<{ sku: string }>("SELECT sku FROM lot_products");
        expect(rows.map((r) => r.sku)).toEqual(["OLD-SKU"]);
        const versions = await sql.all<{ module: string }>(
          "SELECT module FROM schema_migrations WHERE module = 'lots'",
        );
        expect(versions).toHaveLength(3); // v1 recorded over the existing tables, v2 and v3 applied
        expect(await sql.all("SELECT published FROM lot_site_state")).toEqual([]);
      } finally {
        await old.close();
      }
    });

    it("builds the same ledger from any arrival order of the same movements; duplicates are ignored", async () => {
      // A lot's life over three units: receive, move part, load into a box, unload, dispense.
      const arb = fc.record({
        received: fc.integer({ min: 5, max: 50 }),
        steps: fc.array(
          fc.record({
            kind: fc.constantFrom("move", "load", "unload", "dispense"),
            dt: fc.integer({ min: 0, max: 120 }),
            qty: fc.integer({ min: 1, max: 10 }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        seed: fc.integer(),
      });
      await fc.assert(
        fc.asyncProperty(arb, async ({ received, steps, seed }) => {
          const lotId = uid("L/prop");
          const [u1, u2, box] = [uid("fridge"), uid("fridge"), uid("box")];
          const ms: Movement[] = [
            mv({
              movementId: uid("m"),
              kind: "receive",
              lotId,
              occurredAt: T0,
              quantity: received,
              toUnitId: u1,
            }),
          ];
          let t = T0;
          // #14: a movement must find the stock it takes, so the life is a consistent one (a
          // step takes at most what its unit holds; one that would find nothing is left out).
          const stock = new Map<string, number>([[u1, received]]);
          for (const s of steps) {
            t += s.dt * MIN;
            const ends =
              s.kind === "move"
                ? { fromUnitId: u1, toUnitId: u2 }
                : s.kind === "load"
                  ? { fromUnitId: u1, toUnitId: box }
                  : s.kind === "unload"
                    ? { fromUnitId: box, toUnitId: u2 }
                    : { fromUnitId: u2 };
            const quantity = Math.min(s.qty, stock.get(ends.fromUnitId) ?? 0);
            if (quantity === 0) continue;
            stock.set(ends.fromUnitId, (stock.get(ends.fromUnitId) ?? 0) - quantity);
            const to = "toUnitId" in ends ? ends.toUnitId : undefined;
            if (to !== undefined) stock.set(to, (stock.get(to) ?? 0) + quantity);
            ms.push(mv({ movementId: uid("m"), kind: s.kind, lotId, occurredAt: t, quantity, ...ends }));
          }
          // Shuffle deterministically from the seed, and repeat some movements.
          const shuffled = [...ms, ...ms.filter((_, i) => i % 3 === 0)];
          let x = seed;
          for (let i = shuffled.length - 1; i > 0; i--) {
            x = (x * 1103515245 + 12345) & 0x7fffffff;
            const j = x % (i + 1);
            [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
          }
          // A take-out that arrives before the stock it takes is refused (CT_LOT_INVALID naming
          // `quantity`); the sender sends it again after the others, as an ERP bridge does.
          const dupes = [];
          let pending = shuffled;
          for (let pass = 0; pending.length > 0 && pass <= shuffled.length; pass++) {
            const refused: Movement[] = [];
            for (const m of pending) {
              try {
                dupes.push((await service.recordMovement(m)).duplicate);
              } catch (err) {
                expect(err).toMatchObject({
                  code: "CT_LOT_INVALID",
                  context: { issues: [{ path: "quantity" }] },
                });
                refused.push(m);
              }
            }
            pending = refused;
          }
          expect(pending).toEqual([]);
          expect(dupes.filter(Boolean)).toHaveLength(shuffled.length - ms.length);
          const expected = lotIntervals(ms);
          for (const unitId of [u1, u2, box]) {
            const got = await service.occupancyIntervals(unitId, T0 - MIN, T0 + 10_000 * MIN);
            const want = expected
              .filter((iv) => iv.unitId === unitId)
              .map((iv) => ({
                lotId,
                siteId: "site-1",
                quantity: iv.quantity,
                from: iv.from,
                to: iv.to === 8_000_000_000_000 ? null : iv.to,
              }));
            expect(got).toEqual(want);
          }
          // The in-order ledger is what a clerk would write down: spot-check the receipt.
          expect(await service.occupancy(u1, T0)).toEqual(
            [
              {
                lotId,
                siteId: "site-1",
                quantity: expected.find((iv) => iv.unitId === u1 && iv.from === T0)?.quantity ?? 0,
              },
            ].filter((r) => r.quantity > 0),
          );
        }),
        { numRuns: 12 },
      );
    }, 120_000);

    it("exposes lots moved in or out partway only for their own time inside", async () => {
      const [fridge, other] = [uid("fridge"), uid("fridge")];
      const [a, b, c] = [uid("LA"), uid("LB"), uid("LC")];
      const start = T0 + 60 * MIN;
      const end = start + 60 * MIN;
      for (const m of [
        mv({
          movementId: uid("m"),
          kind: "receive",
          lotId: a,
          occurredAt: T0,
          quantity: 5,
          toUnitId: fridge,
        }),
        mv({
          movementId: uid("m"),
          kind: "receive",
          lotId: b,
          occurredAt: T0,
          quantity: 3,
          toUnitId: fridge,
        }),
        mv({
          movementId: uid("m"),
          kind: "move",
          lotId: b,
          occurredAt: start + 20 * MIN,
          quantity: 3,
          fromUnitId: fridge,
          toUnitId: other,
        }),
        mv({
          movementId: uid("m"),
          kind: "receive",
          lotId: c,
          occurredAt: start + 40 * MIN,
          quantity: 2,
          toUnitId: fridge,
        }),
      ]) {
        await service.recordMovement(m);
      }
      await record(fridge, T0, end + 30 * MIN, (t) => (t >= start && t < end ? 10 : 5));
      await service.onExcursion(
        excursion({ id: uid("exc"), unitId: fridge, startedAt: start, endedAt: end }),
      );

      const minutes = async (lotId: string) => (await service.exposures(lotId)).map((e) => e.minutesAbove);
      expect(await minutes(a)).toEqual([60]);
      expect(await minutes(b)).toEqual([20]);
      expect(await minutes(c)).toEqual([20]);
      const [eb] = await service.exposures(b);
      expect(eb).toMatchObject({ from: start, to: start + 20 * MIN, quantity: 3, peakC: 10 });
      expect(eb?.mktC).toBeCloseTo(10, 5);

      // Action-level: quarantined where each lot is now — B in the other fridge.
      const holdsB = await service.holds({ lotId: b });
      expect(holdsB).toMatchObject([{ unitId: other, status: "quarantined", quantity: 3 }]);
      const [elig] = await service.eligibility({ siteId: "site-1", lotId: a });
      expect(elig).toMatchObject({
        status: "quarantined",
        eligible: false,
        transferableQuantity: 0,
        lotSeq: 1,
      });
      expect(elig?.remainingBudgetMinutes).toEqual({ high: 0, low: 30 });
    });

    it("publishes a lot's eligibility only when it changed, budget in whole minutes rounded down", async () => {
      const lotId = uid("L2026/elig");
      const fridge = uid("fridge");
      const start = T0 + 400 * MIN;
      const end = start + 20 * MIN + 30_000;
      await service.recordMovement(
        mv({ movementId: uid("m"), kind: "receive", lotId, occurredAt: T0, quantity: 5, toUnitId: fridge }),
      );
      await record(fridge, T0, end + 30 * MIN, (t) => (t >= start && t < end ? 10 : 5));
      const topic = formatTopic({ kind: "eligibility", siteId: "site-1", lotId });
      const published = async () => (await service.outbox.rows()).filter((r) => r.topic === topic).length;
      const afterReceive = await published();
      // An alert-level excursion: flagged for review, still eligible, budget used.
      const exc = excursion({
        id: uid("exc"),
        unitId: fridge,
        startedAt: start,
        endedAt: end,
        tier: "alert",
      });
      await service.onExcursion(exc);
      const afterExcursion = await published();
      expect(afterExcursion).toBe(afterReceive + 1);
      // The same excursion again (an update that changed nothing for the lot): nothing new.
      await service.onExcursion(exc);
      expect(await published()).toBe(afterExcursion);
      const [elig] = await service.eligibility({ siteId: "site-1", lotId });
      const used = (await service.exposures(lotId)).reduce((n, e) => n + e.minutesAbove, 0);
      expect(used % 1).not.toBe(0); // a fractional exposure…
      expect(elig?.remainingBudgetMinutes.high).toBe(Math.floor(60 - used)); // …leaves whole minutes
    });

    it("follows late transit-box data to the destination fridge and quarantines there (budget across units)", async () => {
      const lotId = uid("L2026/0412");
      const [fridgeA, box, fridgeB] = [uid("fridge-a"), uid("box"), uid("fridge-b")];
      const tLoad = T0 + 120 * MIN;
      const tUnload = T0 + 300 * MIN;
      await service.upsertLot({ lotId, sku: "REAG-CRP-100", expiresAt: clock.t + 365 * 24 * 60 * MIN });
      for (const m of [
        mv({ movementId: uid("m"), kind: "receive", lotId, occurredAt: T0, quantity: 10, toUnitId: fridgeA }),
        mv({
          movementId: uid("m"),
          kind: "load",
          lotId,
          occurredAt: tLoad,
          quantity: 4,
          fromUnitId: fridgeA,
          toUnitId: box,
        }),
        mv({
          movementId: uid("m"),
          siteId: "site-2",
          kind: "unload",
          lotId,
          occurredAt: tUnload,
          quantity: 4,
          fromUnitId: box,
          toUnitId: fridgeB,
        }),
      ]) {
        await service.recordMovement(m);
      }
      // 1) Store fridge: alert-level, 30 min above 8 °C before the load → flagged, budget 30 used.
      await record(fridgeA, T0, tLoad, (t) => (t >= T0 + 30 * MIN && t < T0 + 60 * MIN ? 9 : 5));
      const excA = uid("exc-a");
      await service.onExcursion(
        excursion({
          id: excA,
          unitId: fridgeA,
          startedAt: T0 + 30 * MIN,
          endedAt: T0 + 60 * MIN,
          tier: "alert",
        }),
      );
      // Exposed before the load: whatever is now in fridge A (6) and fridge B (4) carries it.
      expect(
        (await service.holds({ lotId })).map((h) => [h.siteId, h.unitId, h.status, h.quantity]).sort(),
      ).toEqual([
        ["site-1", fridgeA, "flagged", 6],
        ["site-2", fridgeB, "flagged", 4],
      ]);
      let [site2] = await service.eligibility({ siteId: "site-2", lotId });
      expect(site2).toMatchObject({ status: "available", eligible: true, transferableQuantity: 4 });
      expect(site2?.remainingBudgetMinutes.high).toBe(30);

      // 2) The box's data arrives late, after the lot is in fridge B at site-2: 40 min above.
      await record(box, tLoad, tUnload, (t) => (t >= tLoad + 60 * MIN && t < tLoad + 100 * MIN ? 9.5 : 6));
      const excBox = uid("exc-box");
      await service.onExcursion(
        excursion({
          id: excBox,
          siteId: "site-1",
          unitId: box,
          startedAt: tLoad + 60 * MIN,
          endedAt: tLoad + 100 * MIN,
          tier: "alert",
        }),
      );
      const holds = await service.holds({ lotId });
      const boxHold = holds.find((h) => h.causeId === excBox);
      expect(boxHold).toMatchObject({
        siteId: "site-2",
        unitId: fridgeB,
        status: "quarantined",
        quantity: 4,
      });
      expect(boxHold?.reason).toContain("stability budget (high) exceeded by 10 min");
      [site2] = await service.eligibility({ siteId: "site-2", lotId });
      expect(site2).toMatchObject({ status: "quarantined", eligible: false, transferableQuantity: 0 });
      expect(site2?.remainingBudgetMinutes.high).toBe(0);
      // The 6 units that stayed at site-1 never saw the box: 30 min used, flagged only.
      const [site1] = await service.eligibility({ siteId: "site-1", lotId });
      expect(site1).toMatchObject({ status: "available", eligible: true, transferableQuantity: 6 });
      expect(site1?.remainingBudgetMinutes.high).toBe(30);

      // QA rejects at site-2; release of a rejected lot is refused with CT_LOT_STATE.
      const rejected = await service.reject({
        siteId: "site-2",
        lotId,
        by: "qa.zhang",
        reason: "budget exceeded in transit",
      });
      expect(rejected).toMatchObject({ status: "rejected", eligible: false, lotSeq: 3 });
      await expect(
        service.release({ siteId: "site-2", lotId, by: "qa.zhang", reason: "x" }),
      ).rejects.toMatchObject({
        code: "CT_LOT_STATE",
      });

      // Events of the lot at site-2 are in the outbox, numbered 1, 2 with stable ids.
      const rows = (await service.outbox.rows()).filter(
        (r) => r.kind === "lot" && r.payload.includes(JSON.stringify(lotId)),
      );
      const site2Events = rows.map((r) => JSON.parse(r.payload)).filter((p) => p.siteId === "site-2");
      expect(site2Events.map((p) => [p.type, p.lotSeq])).toEqual([
        ["lot.flagged_for_review", 1],
        ["lot.quarantined", 2],
        ["lot.rejected", 3],
      ]);
      expect(site2Events[1].eventId).toMatch(/^lot-site-2-L2026-0412-.*-2$/);
    });

    it("carries a hold with the stock when quarantined stock is moved to another site", async () => {
      const lotId = uid("LM");
      const [fridge, box, dest] = [uid("fridge"), uid("box"), uid("fridge")];
      await service.recordMovement(
        mv({ movementId: uid("m"), kind: "receive", lotId, occurredAt: T0, quantity: 8, toUnitId: fridge }),
      );
      await record(fridge, T0, T0 + 120 * MIN, (t) => (t >= T0 + 30 * MIN && t < T0 + 90 * MIN ? 12 : 5));
      const exc = uid("exc");
      await service.onExcursion(
        excursion({ id: exc, unitId: fridge, startedAt: T0 + 30 * MIN, endedAt: T0 + 90 * MIN }),
      );
      // The ERP moves 3 of the held units anyway: through a box to site-3.
      for (const m of [
        mv({
          movementId: uid("m"),
          kind: "load",
          lotId,
          occurredAt: T0 + 200 * MIN,
          quantity: 3,
          fromUnitId: fridge,
          toUnitId: box,
        }),
        mv({
          movementId: uid("m"),
          siteId: "site-3",
          kind: "unload",
          lotId,
          occurredAt: T0 + 300 * MIN,
          quantity: 3,
          fromUnitId: box,
          toUnitId: dest,
        }),
      ]) {
        await service.recordMovement(m);
      }
      const [site3] = await service.eligibility({ siteId: "site-3", lotId });
      expect(site3).toMatchObject({ status: "quarantined", eligible: false, lotSeq: 1 });
      expect(
        (await service.holds({ lotId, siteId: "site-3" })).map((h) => [h.unitId, h.quantity, h.status]),
      ).toEqual([[dest, 3, "quarantined"]]);
    });

    it("quarantines on a recording gap, releases with who and why, and says when a decision is not allowed", async () => {
      const lotId = uid("LG");
      const fridge = uid("fridge");
      await service.recordMovement(
        mv({ movementId: uid("m"), kind: "receive", lotId, occurredAt: T0, quantity: 7, toUnitId: fridge }),
      );
      await expect(
        service.release({ siteId: "site-1", lotId, by: "qa.li", reason: "ok" }),
      ).rejects.toMatchObject({
        code: "CT_LOT_STATE",
      });
      await service.onRecordingGap({
        siteId: "site-1",
        unitId: fridge,
        from: T0 + 10 * MIN,
        to: T0 + 70 * MIN,
        gapId: uid("gap"),
      });
      let [e] = await service.eligibility({ lotId });
      expect(e).toMatchObject({ status: "quarantined", eligible: false });
      expect(e?.reasons.join(" ")).toContain("exposure unknown");
      e = await service.release({
        siteId: "site-1",
        lotId,
        by: "qa.li",
        reason: "data recovered from the logger, in range",
      });
      expect(e).toMatchObject({ status: "released", eligible: true, transferableQuantity: 7, lotSeq: 2 });
      const [hold] = await service.holds({ lotId });
      expect(hold).toMatchObject({ status: "released", decidedBy: "qa.li" });
      await expect(service.release({ siteId: "site-1", lotId, by: "", reason: "x" })).rejects.toMatchObject({
        code: "CT_LOT_INVALID",
        message: expect.stringContaining("by: must name who decided"),
      });
    });

    it("makes an expired lot ineligible whatever its history, and denies transfers beyond the budget", async () => {
      const lotId = uid("LE");
      const fridge = uid("fridge");
      await service.upsertLot({ lotId, sku: "REAG-CRP-100", expiresAt: clock.t + 60 * MIN });
      await service.recordMovement(
        mv({ movementId: uid("m"), kind: "receive", lotId, occurredAt: T0, quantity: 9, toUnitId: fridge }),
      );
      const ok = await service.checkTransfer({
        lotId,
        quantity: 9,
        fromUnitId: fridge,
        expectedTransitMinutes: 30,
        boxClass: "qualified-24h",
      });
      expect(ok).toEqual({ allow: true, reasons: [] });
      const tooMany = await service.checkTransfer({
        lotId,
        quantity: 10,
        fromUnitId: fridge,
        expectedTransitMinutes: 30,
        boxClass: "qualified-24h",
      });
      expect(tooMany.allow).toBe(false);
      const unqualified = await service.checkTransfer({
        lotId,
        quantity: 1,
        fromUnitId: fridge,
        expectedTransitMinutes: 45,
        boxClass: "none",
      });
      expect(unqualified).toMatchObject({ allow: false });
      expect(unqualified.reasons.join(" ")).toContain(
        "remaining low budget 30 min is below the route's worst-case exposure 45 min",
      );
      const late = await service.checkTransfer({
        lotId,
        quantity: 1,
        fromUnitId: fridge,
        expectedTransitMinutes: 90,
        boxClass: "qualified-24h",
      });
      expect(late.reasons.join(" ")).toContain("before the transfer arrives");

      await service.sweepExpired();
      const saved = clock.t;
      clock.t += 2 * 60 * MIN;
      try {
        const [e] = await service.eligibility({ siteId: "site-1", lotId });
        expect(e).toMatchObject({ status: "available", eligible: false, transferableQuantity: 0 });
        expect(e?.reasons.join(" ")).toContain("expired");
        // The retained state flips too: the sweep publishes it through the outbox.
        expect(await service.sweepExpired()).toBeGreaterThanOrEqual(1);
        const states = (await service.outbox.rows())
          .filter((r) => r.kind === "eligibility")
          .map((r) => JSON.parse(r.payload))
          .filter((p) => p.lotId === lotId);
        expect(states.at(-1)).toMatchObject({ eligible: false, transferableQuantity: 0 });
        expect(states.at(-2)).toMatchObject({ eligible: true });
      } finally {
        clock.t = saved;
      }
    });

    it("imports a good CSV, and nothing from a file with bad rows (row and column named)", async () => {
      const lotId = uid("L CSV/1");
      const fridge = uid("fridge");
      const ids = [uid("csv"), uid("csv"), uid("csv")];
      const header =
        "movementId,kind,siteId,occurredAt,lotId,sku,quantity,fromUnitId,toUnitId,reference,actor";
      const bad = [
        header,
        `${ids[0]},receive,site-1,2026-11-20T08:00:00Z,"${lotId}",REAG-CRP-100,10,,${fridge},PO-1,erp`,
        `${ids[1]},move,site-1,2026-11-20T09:00:00Z,"${lotId}",REAG-CRP-100,0,${fridge},,TO-1,erp`,
        `${ids[2]},dispense,site-1,yesterday,"${lotId}",REAG-CRP-100,2,${fridge},,,`,
      ].join("\r\n");
      const report = await service.importCsv(bad);
      expect(report.ok).toBe(false);
      expect(report.imported).toBe(0);
      expect(report.errors).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ row: 3, column: "quantity" }),
          expect.objectContaining({ row: 3, column: "toUnitId" }),
          expect.objectContaining({ row: 4, column: "occurredAt", value: "yesterday" }),
        ]),
      );
      expect(await service.occupancy(fridge, T0 + 1)).toEqual([]);

      const good = [
        header,
        `${ids[0]},receive,site-1,2026-11-20T08:00:00Z,"${lotId}",REAG-CRP-100,10,,${fridge},PO-1,erp`,
        `${ids[2]},dispense,site-1,${T0 + 60 * MIN},"${lotId}",REAG-CRP-100,2,${fridge},,,"store, clerk ""A"""`,
      ].join("\n");
      expect(await service.importCsv(good)).toEqual({
        ok: true,
        rows: 2,
        imported: 2,
        duplicates: 0,
        errors: [],
      });
      expect(await service.importCsv(good)).toMatchObject({ ok: true, imported: 0, duplicates: 2 });
      expect(await service.occupancy(fridge, T0 + 61 * MIN)).toEqual([
        { lotId, siteId: "site-1", quantity: 8 },
      ]);
    });

    it("answers eligibility by site with the same states as lot by lot", async () => {
      for (const siteId of ["site-1", "site-2", "site-3"]) {
        const bySite = await service.eligibility({ siteId });
        expect(bySite.length).toBeGreaterThan(0);
        const one = [];
        for (const e of bySite) one.push(...(await service.eligibility({ siteId, lotId: e.lotId })));
        expect(bySite).toEqual(one);
        expect(bySite.map((e) => e.lotId)).toEqual([...bySite.map((e) => e.lotId)].sort());
      }
      const site2 = await service.eligibility({ siteId: "site-2" });
      expect(site2.some((e) => e.status === "rejected")).toBe(true);
    });

    it("serves the planner over REST with 4xx answers naming the field", async () => {
      const app = Fastify();
      await app.register(lotsPlugin(service));
      try {
        const lotId = uid("LR");
        const fridge = uid("fridge");
        const post = await app.inject({
          method: "POST",
          url: "/lots/movements",
          payload: mv({
            movementId: uid("m"),
            kind: "receive",
            lotId,
            occurredAt: T0,
            quantity: 3,
            toUnitId: fridge,
          }),
        });
        expect(post.statusCode).toBe(201);
        const bad = await app.inject({
          method: "POST",
          url: "/lots/movements",
          payload: mv({
            movementId: uid("m"),
            kind: "receive",
            lotId,
            occurredAt: T0,
            quantity: 0,
            toUnitId: fridge,
          }),
        });
        expect(bad.statusCode).toBe(400);
        expect(bad.json()).toMatchObject({
          code: "CT_WIRE_INVALID",
          message: expect.stringContaining("quantity"),
        });
        const elig = await app.inject({
          method: "GET",
          url: `/lots/eligibility?lotId=${encodeURIComponent(lotId)}`,
        });
        expect(elig.statusCode).toBe(200);
        expect(elig.json()).toMatchObject([
          { lotId, siteId: "site-1", status: "available", transferableQuantity: 3 },
        ]);
        const noQuery = await app.inject({ method: "GET", url: "/lots/eligibility" });
        expect(noQuery.statusCode).toBe(400);
        expect(noQuery.json().message).toContain("siteId: give siteId or lotId");
        const check = await app.inject({
          method: "POST",
          url: "/lots/transfer-check",
          payload: { lotId, quantity: 1, fromUnitId: fridge, expectedTransitMinutes: -1, boxClass: "none" },
        });
        expect(check.statusCode).toBe(400);
        expect(check.json()).toMatchObject({
          code: "CT_LOT_INVALID",
          message: expect.stringContaining("expectedTransitMinutes"),
        });
        const release = await app.inject({
          method: "POST",
          url: "/lots/release",
          payload: { siteId: "site-1", lotId, by: "qa", reason: "r" },
        });
        expect(release.statusCode).toBe(409);
        const csv = await app.inject({
          method: "POST",
          url: "/lots/movements/import",
          headers: { "content-type": "text/csv" },
          payload: "movementId,kind\nx,receive\n",
        });
        expect(csv.statusCode).toBe(422);
        expect(csv.json().errors).toEqual(
          expect.arrayContaining([expect.objectContaining({ row: 1, column: "siteId" })]),
        );
      } finally {
        await app.close();
      }
    });
  });
}
