/**
 * The event flow end to end: lots service → outbox (same SQLite transaction) → dispatcher →
 * embedded broker → the reference planner consumer (simulators/src/planner). A quarantine
 * reaches the planner as a lot event and a retained eligibility state; a planner that connects
 * late sees the current state at once from the retained message.
 */
import type { Eligibility, ExcursionEvent, LotEvent } from "@coldtrace/protocol";
import { startEmbeddedBroker } from "@coldtrace/testkit";
import mqtt from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLotService, type LotService } from "../../src/lots/index.ts";
import { createEventOutbox } from "../../src/outbox/index.ts";
import { sqlDatabase } from "../../src/storage/sql/database.ts";
import { createSqliteReadingStore, openSqlite } from "../../src/storage/sqlite.ts";

interface PlannerRow {
  siteId: string;
  lotId: string;
  eligibility: Eligibility | null;
  lastLotSeq: number;
}
interface PlannerConsumer {
  row(siteId: string, lotId: string): PlannerRow | undefined;
  events(): LotEvent[];
  close(): Promise<void>;
}
type StartPlanner = (o: { url: string; siteId?: string }) => Promise<PlannerConsumer>;
// Another workspace: imported at run time so the gateway's typecheck stays inside its root.
const plannerPath = new URL("../../../simulators/src/planner/index.ts", import.meta.url).href;
const { startPlannerConsumer } = (await import(plannerPath)) as { startPlannerConsumer: StartPlanner };

const T0 = Date.UTC(2026, 10, 25, 8, 0, 0);
const MIN = 60_000;

async function until(check: () => boolean) {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}

describe("planner event flow (embedded broker)", () => {
  let broker: Awaited<ReturnType<typeof startEmbeddedBroker>>;
  let service: LotService;
  let pub: mqtt.MqttClient;
  let stopDispatcher: () => Promise<void>;
  const siteId = `store-p${process.pid}`;

  beforeAll(async () => {
    broker = await startEmbeddedBroker();
    const readings = await createSqliteReadingStore(openSqlite(":memory:"));
    // The outbox is the host's (as in the gateway); the service enqueues, the test dispatches.
    const db = sqlDatabase({ kind: "sqlite", db: openSqlite(":memory:") });
    const outbox = createEventOutbox(db);
    await outbox.init();
    service = await createLotService({
      db,
      outbox,
      readings,
      clock: { now: () => T0 + 600 * MIN },
      log: pino({ level: "silent" }),
      unitLimits: () => ({ high: 8, low: 2 }),
    });
    await service.upsertProduct({
      sku: "REAG-CRP-100",
      name: "CRP",
      storageClass: "2-8C",
      budgetMinutes: { high: 60, low: null },
    });
    pub = mqtt.connect(broker.url, { clientId: "ct-gw-planner-test" });
    await new Promise((r) => pub.once("connect", r));
    const d = outbox.startDispatcher(pub, pino({ level: "silent" }), { pollMs: 50 });
    stopDispatcher = d.stop;
  });
  afterAll(async () => {
    await stopDispatcher?.();
    await pub?.endAsync();
    await broker?.close();
  });

  it("quarantine reaches a connected planner, and a late planner sees the retained state", async () => {
    const planner = await startPlannerConsumer({ url: broker.url, siteId });
    try {
      const lotId = "L2026/0412";
      await service.recordMovement({
        v: 1,
        movementId: "erp-1",
        kind: "receive",
        siteId,
        occurredAt: T0,
        lotId,
        sku: "REAG-CRP-100",
        quantity: 4,
        toUnitId: "fridge-2",
      });
      await until(() => planner.row(siteId, lotId)?.eligibility?.transferableQuantity === 4);
      const exc: ExcursionEvent = {
        v: 1,
        eventId: "exc-000003-opened",
        siteId,
        at: T0 + 60 * MIN,
        type: "excursion.opened",
        excursionId: "exc-000003",
        unitId: "fridge-2",
        unitKind: "fridge",
        side: "high",
        tier: "action",
        startedAt: T0 + 60 * MIN,
        endedAt: null,
        durationMs: 0,
        peakC: 11.2,
        troughC: 8.1,
        degreeMinutes: 0,
        minutesBeyond: { alert: 0, action: 0 },
        mktC: 11.2,
      };
      await service.onExcursion(exc);
      await until(() => planner.row(siteId, lotId)?.eligibility?.status === "quarantined");
      expect(planner.events()).toMatchObject([
        { type: "lot.quarantined", lotId, lotSeq: 1, excursionIds: ["exc-000003"] },
      ]);
      expect(planner.row(siteId, lotId)?.eligibility).toMatchObject({
        eligible: false,
        transferableQuantity: 0,
        lotSeq: 1,
      });

      const late = await startPlannerConsumer({ url: broker.url, siteId });
      try {
        await until(
          () => late.row(siteId, lotId)?.eligibility !== null && late.row(siteId, lotId) !== undefined,
        );
        expect(late.row(siteId, lotId)?.eligibility).toMatchObject({ status: "quarantined", lotSeq: 1 });
      } finally {
        await late.close();
      }

      // #14: no release while the lot is still in the fridge and its excursion is open.
      const decision = { siteId, lotId, by: "qa.zhang", reason: "probe fault confirmed, product in range" };
      await expect(service.release(decision)).rejects.toMatchObject({ code: "CT_LOT_IN_EXCURSION" });
      await service.onExcursion({
        ...exc,
        eventId: "exc-000003-closed",
        type: "excursion.closed",
        at: T0 + 80 * MIN,
        endedAt: T0 + 80 * MIN,
        durationMs: 20 * MIN,
      });
      await service.release(decision);
      await until(() => planner.row(siteId, lotId)?.eligibility?.status === "released");
      expect(planner.events().map((e) => [e.type, e.lotSeq, e.by ?? null])).toEqual([
        ["lot.quarantined", 1, null],
        ["lot.released", 2, "qa.zhang"],
      ]);
    } finally {
      await planner.close();
    }
  });
});
