/**
 * The lots side of #14 on the service (SQLite, real reading store): causes reconciled per lot
 * per batch when late data withdraws excursions (D3), movements checked on every path, a lot
 * moved into a unit in excursion held in the movement's own transaction, a release refused
 * while the lot is still in a unit whose excursion is open.
 */
import type { ExcursionEvent, LotEvent, Movement } from "@coldtrace/protocol";
import pino from "pino";
import { beforeEach, describe, expect, it } from "vitest";
import type { DomainEvent } from "../../src/kernel/events.ts";
import { UnitRegistry } from "../../src/kernel/units.ts";
import { createLotService, type LotService } from "../../src/lots/index.ts";
import { sqlDatabase } from "../../src/storage/sql/database.ts";
import { createSqliteReadingStore, openSqlite } from "../../src/storage/sqlite.ts";
import type { ReadingStore } from "../../src/storage/types.ts";

const T0 = Date.UTC(2026, 10, 20, 8, 0, 0);
const MIN = 60_000;
const SITE = "site-1";
const SKU = "REAG-CRP-100";

function excursion(p: {
  id: string;
  startedAt: number;
  endedAt: number | null;
  at?: number;
  tier?: "alert" | "action";
  withdrawn?: { reason: "superseded" | "retracted"; supersededBy?: string };
  unitId?: string;
}): ExcursionEvent {
  const closed = p.endedAt !== null;
  return {
    v: 1,
    eventId: `${p.id}-${closed ? "closed" : "updated"}`,
    siteId: SITE,
    at: p.at ?? p.endedAt ?? p.startedAt,
    type: closed ? "excursion.closed" : "excursion.updated",
    excursionId: p.id,
    unitId: p.unitId ?? "fridge-1",
    unitKind: "fridge",
    side: "high",
    tier: p.tier ?? "action",
    startedAt: p.startedAt,
    endedAt: p.endedAt,
    durationMs: closed ? (p.endedAt as number) - p.startedAt : 0,
    peakC: 14,
    troughC: 8.5,
    degreeMinutes: 0,
    minutesBeyond: { alert: 0, action: 0 },
    mktC: 12,
    ...(p.withdrawn ? { withdrawn: p.withdrawn } : {}),
  } as ExcursionEvent;
}

const out = (...events: ExcursionEvent[]): DomainEvent[] =>
  events.map((event) => ({ type: "excursion", event }));

describe("lots: records that hold (#14)", () => {
  let service: LotService;
  let readings: ReadingStore;
  const units = new UnitRegistry();
  units.register({ unitId: "fridge-1", siteId: SITE, kind: "fridge", probeIds: ["fridge-1-p1"] });
  units.register({ unitId: "fridge-2", siteId: SITE, kind: "fridge", probeIds: ["fridge-2-p1"] });
  let n = 0;
  const mv = (p: Partial<Movement> & Pick<Movement, "kind" | "quantity" | "occurredAt">): Movement =>
    ({ v: 1, movementId: `m-${++n}`, siteId: SITE, lotId: "L1", sku: SKU, ...p }) as Movement;

  const lotEvents = async (): Promise<LotEvent[]> =>
    (await service.outbox.rows())
      .filter((r) => r.kind === "lot")
      .map((r) => JSON.parse(r.payload) as LotEvent);

  async function hot(from: number, to: number) {
    const rows = [];
    let seq = 1;
    for (let t = T0; t < T0 + 600 * MIN; t += MIN) {
      rows.push({
        agentId: "pi",
        seq: seq++,
        siteId: SITE,
        unitId: "fridge-1",
        probeId: "fridge-1-p1",
        observedAt: t,
        receivedAt: t,
        tempC: t >= from && t < to ? 14 : 5,
        quality: "ok" as const,
        backfill: false,
      });
    }
    await readings.append(rows);
  }

  beforeEach(async () => {
    const db = openSqlite(":memory:");
    readings = await createSqliteReadingStore(openSqlite(":memory:"));
    service = await createLotService({
      db: sqlDatabase({ kind: "sqlite", db }),
      readings,
      clock: { now: () => T0 + 24 * 60 * MIN },
      log: pino({ level: "silent" }),
      unitLimits: () => ({ high: 8, low: 2 }),
      units,
    });
    await service.upsertProduct({
      sku: SKU,
      name: "CRP",
      storageClass: "2-8C",
      budgetMinutes: { high: 600, low: null },
    });
    await service.recordMovement(mv({ kind: "receive", quantity: 6, occurredAt: T0, toUnitId: "fridge-1" }));
  });

  it("a newest-first backfill that supersedes ten excursions leaves one lot event and one hold reason", async () => {
    await hot(T0 + 100 * MIN, T0 + 200 * MIN);
    // Live: the excursion as first seen (from minute 190). Then late data pushes its start back
    // ten times; each batch withdraws the previous one and carries its replacement (D3).
    await service.onEngineOutputs(
      out(excursion({ id: "exc-10", startedAt: T0 + 190 * MIN, endedAt: null, at: T0 + 200 * MIN })),
    );
    for (let k = 9; k >= 0; k--) {
      const prev = `exc-${k + 1}`;
      const id = `exc-${k}`;
      const start = T0 + (100 + 10 * k) * MIN;
      await service.onEngineOutputs(
        out(
          excursion({
            id: prev,
            startedAt: start + 10 * MIN,
            endedAt: start + 10 * MIN,
            withdrawn: { reason: "superseded", supersededBy: id },
          }),
          excursion({ id, startedAt: start, endedAt: k === 0 ? T0 + 200 * MIN : null, at: T0 + 200 * MIN }),
        ),
      );
    }
    const events = await lotEvents();
    expect(events.map((e) => [e.type, e.lotSeq, e.excursionIds])).toEqual([
      ["lot.quarantined", 1, ["exc-10"]],
    ]);
    const [elig] = await service.eligibility({ siteId: SITE, lotId: "L1" });
    expect(elig).toMatchObject({ status: "quarantined", eligible: false, lotSeq: 1 });
    expect(elig?.reasons).toHaveLength(1);
    expect(elig?.reasons[0]).toContain("exc-0");
    const holds = await service.holds({ lotId: "L1" });
    expect(holds.filter((h) => h.status === "quarantined").map((h) => h.causeId)).toEqual(["exc-0"]);
    expect(holds.filter((h) => h.status === "lifted")).toHaveLength(10);
    expect(holds.find((h) => h.causeId === "exc-10")).toMatchObject({
      decidedBy: "system",
      decidedReason: expect.stringContaining("superseded by exc-9"),
    });
    // The budget counts the true excursion once: 100 min above 8 °C.
    expect(elig?.remainingBudgetMinutes.high).toBe(500);
  });

  it("a hold whose only cause was withdrawn is lifted by the system with the reason, and the lot is available", async () => {
    await hot(T0 + 100 * MIN, T0 + 110 * MIN);
    await service.onEngineOutputs(
      out(excursion({ id: "exc-a", startedAt: T0 + 100 * MIN, endedAt: T0 + 110 * MIN })),
    );
    expect((await service.eligibility({ siteId: SITE, lotId: "L1" }))[0]).toMatchObject({
      status: "quarantined",
    });
    await service.onEngineOutputs(
      out(
        excursion({
          id: "exc-a",
          startedAt: T0 + 100 * MIN,
          endedAt: T0 + 100 * MIN,
          withdrawn: { reason: "retracted" },
        }),
      ),
    );
    const events = await lotEvents();
    expect(events.map((e) => [e.type, e.by ?? null])).toEqual([
      ["lot.quarantined", null],
      ["lot.released", "system"],
    ]);
    expect(events[1]?.reason).toContain("withdrawn");
    const [elig] = await service.eligibility({ siteId: SITE, lotId: "L1" });
    expect(elig).toMatchObject({ status: "available", eligible: true, transferableQuantity: 6, reasons: [] });
    expect(elig?.remainingBudgetMinutes.high).toBe(600);
    expect(await service.holds({ lotId: "L1" })).toMatchObject([{ status: "lifted", decidedBy: "system" }]);
    // Later data decides it again (the same id, no withdrawn): a cause added again, held again.
    await service.onEngineOutputs(
      out(excursion({ id: "exc-a", startedAt: T0 + 100 * MIN, endedAt: T0 + 110 * MIN })),
    );
    expect((await lotEvents()).map((e) => e.type)).toEqual([
      "lot.quarantined",
      "lot.released",
      "lot.quarantined",
    ]);
    expect(await service.holds({ lotId: "L1" })).toMatchObject([{ status: "quarantined", decidedBy: null }]);
  });

  it("a lot moved into a unit with an open action excursion is held in the movement's own transaction", async () => {
    await service.onEngineOutputs(
      out(excursion({ id: "exc-open", unitId: "fridge-2", startedAt: T0 + 60 * MIN, endedAt: null })),
    );
    expect(await lotEvents()).toEqual([]);
    await service.recordMovement(
      mv({
        kind: "move",
        quantity: 2,
        occurredAt: T0 + 90 * MIN,
        fromUnitId: "fridge-1",
        toUnitId: "fridge-2",
      }),
    );
    // No engine update in between: the movement itself held the stock it brought in.
    expect((await lotEvents()).map((e) => [e.type, e.unitId, e.quantity])).toEqual([
      ["lot.quarantined", "fridge-2", 2],
    ]);
    const [elig] = await service.eligibility({ siteId: SITE, lotId: "L1" });
    expect(elig).toMatchObject({ status: "quarantined", eligible: false });
    // A release while it is still inside the open excursion is refused, with a coded error …
    const decision = { siteId: SITE, lotId: "L1", by: "qa.li", reason: "checked" };
    await expect(service.release(decision)).rejects.toMatchObject({
      code: "CT_LOT_IN_EXCURSION",
      context: { unitId: "fridge-2", excursionId: "exc-open" },
    });
    // … and accepted once the stock has left the unit.
    await service.recordMovement(
      mv({
        kind: "move",
        quantity: 2,
        occurredAt: T0 + 120 * MIN,
        fromUnitId: "fridge-2",
        toUnitId: "fridge-1",
      }),
    );
    await expect(service.release(decision)).resolves.toMatchObject({ status: "released", eligible: true });
  });

  it("keeps the budget current with each minute's update of an open excursion, republishing only on change", async () => {
    await hot(T0 + 100 * MIN, T0 + 300 * MIN);
    const states = async () =>
      (await service.outbox.rows())
        .filter((r) => r.kind === "eligibility")
        .map((r) => JSON.parse(r.payload) as { remainingBudgetMinutes: { high: number | null } });
    const start = T0 + 100 * MIN;
    const seen: Array<number | null> = [];
    // The engine updates the open excursion every minute, sometimes twice within one.
    for (const at of [5, 5.5, 6, 7, 7.25, 8].map((m) => start + m * MIN)) {
      await service.onEngineOutputs(out(excursion({ id: "exc-live", startedAt: start, endedAt: null, at })));
      seen.push(
        (await service.eligibility({ siteId: SITE, lotId: "L1" }))[0]?.remainingBudgetMinutes.high ?? null,
      );
    }
    // 600 min of budget: 5, 5.5, 6, 7, 7.25, 8 minutes above 8 °C used by then.
    expect(seen).toEqual([595, 594, 594, 593, 592, 592]);
    const published = (await states()).map((e) => e.remainingBudgetMinutes.high);
    // After the receipt (600): the quarantine with 595, then one state per whole-minute change.
    expect(published).toEqual([600, 595, 594, 593, 592]);
  });

  it("refuses a movementId already recorded with other content (CT_LOT_CONFLICT), on one movement and in a batch", async () => {
    const m = mv({ kind: "dispense", quantity: 1, occurredAt: T0 + MIN, fromUnitId: "fridge-1" });
    expect(await service.recordMovement(m)).toEqual({ duplicate: false });
    expect(await service.recordMovement(m)).toEqual({ duplicate: true });
    await expect(service.recordMovement({ ...m, quantity: 2 })).rejects.toMatchObject({
      code: "CT_LOT_CONFLICT",
      message: expect.stringContaining("quantity: 1"),
      context: { issues: [{ path: "movementId" }] },
    });
    await expect(
      service.recordMovements([
        mv({ kind: "dispense", quantity: 1, occurredAt: T0 + 2 * MIN, fromUnitId: "fridge-1" }),
        { ...m, occurredAt: T0 + 3 * MIN },
      ]),
    ).rejects.toMatchObject({
      code: "CT_LOT_CONFLICT",
      context: { issues: [{ path: "movements[1].movementId" }] },
    });
    // All or nothing: the good movement of the refused batch is not recorded.
    expect(await service.occupancy("fridge-1", T0 + 10 * MIN)).toEqual([
      { lotId: "L1", siteId: SITE, quantity: 5 },
    ]);
  });

  it("refuses movements that contradict the ledger or name an unknown unit or SKU, naming the field", async () => {
    await expect(
      service.recordMovement(
        mv({ kind: "dispense", quantity: 600, occurredAt: T0 + MIN, fromUnitId: "fridge-1" }),
      ),
    ).rejects.toMatchObject({
      code: "CT_LOT_INVALID",
      message: expect.stringContaining('quantity: takes 600 of lot "L1" out of fridge-1'),
    });
    await expect(
      service.recordMovement(mv({ kind: "receive", quantity: 1, occurredAt: T0, toUnitId: "fridge-9" })),
    ).rejects.toMatchObject({ code: "CT_LOT_INVALID", context: { issues: [{ path: "toUnitId" }] } });
    await expect(
      service.recordMovement(
        mv({
          lotId: "L2",
          sku: "NO-SUCH-SKU",
          kind: "receive",
          quantity: 1,
          occurredAt: T0,
          toUnitId: "fridge-1",
        }),
      ),
    ).rejects.toMatchObject({ code: "CT_LOT_INVALID", context: { issues: [{ path: "sku" }] } });
    await expect(
      service.recordMovement(
        mv({ sku: "OTHER", kind: "receive", quantity: 1, occurredAt: T0, toUnitId: "fridge-1" }),
      ),
    ).rejects.toMatchObject({
      code: "CT_LOT_INVALID",
      message: expect.stringContaining('is SKU "REAG-CRP-100"'),
    });
    // A back-dated take-out that leaves a recorded one without stock is refused too.
    await service.recordMovement(
      mv({ kind: "dispense", quantity: 6, occurredAt: T0 + 60 * MIN, fromUnitId: "fridge-1" }),
    );
    await expect(
      service.recordMovement(
        mv({ kind: "dispense", quantity: 1, occurredAt: T0 + 30 * MIN, fromUnitId: "fridge-1" }),
      ),
    ).rejects.toMatchObject({ code: "CT_LOT_INVALID", context: { issues: [{ path: "quantity" }] } });
    // CSV: the same checks, all or nothing, the row and column named.
    const csv = [
      "movementId,kind,siteId,occurredAt,lotId,sku,quantity,fromUnitId,toUnitId",
      `c-1,receive,${SITE},${T0},L3,${SKU},5,,fridge-1`,
      `c-2,dispense,${SITE},${T0 + MIN},L3,${SKU},50,fridge-1,`,
      `c-3,receive,${SITE},${T0},L3,${SKU},5,,fridge-7`,
    ].join("\n");
    const report = await service.importCsv(csv);
    expect(report).toMatchObject({ ok: false, imported: 0 });
    expect(report.errors.map((e) => [e.row, e.column])).toEqual([
      [3, "quantity"],
      [4, "toUnitId"],
    ]);
    expect((await service.occupancy("fridge-1", T0 + 10 * MIN)).map((o) => o.lotId)).toEqual(["L1"]);
  });
});
