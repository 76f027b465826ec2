/**
 * The RecordStore contract: every record backend (SQLite, PostgreSQL) runs this same suite
 * against a real database. Tests keep apart by fresh site/unit ids.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type {
  AgentRecord,
  AlarmRecord,
  ExcursionRecord,
  GapRecordRow,
  RecordStore,
} from "../../src/storage/types.ts";
import { T0, uid } from "./reading-store.contract.ts";

const H = 3_600_000;

function alarm(siteId: string, unitId: string, over: Partial<AlarmRecord> = {}): AlarmRecord {
  return {
    alarmId: uid("alarm"),
    siteId,
    unitId,
    kind: "temperature",
    probeId: "p1",
    tier: "alert",
    side: "high",
    raisedAt: T0,
    message: "above 8 °C for 15 min",
    state: "raised",
    updatedAt: T0,
    ...over,
  };
}

function excursion(siteId: string, unitId: string, over: Partial<ExcursionRecord> = {}): ExcursionRecord {
  return {
    excursionId: uid("exc"),
    siteId,
    unitId,
    unitKind: "fridge",
    side: "high",
    tier: "action",
    startedAt: T0,
    endedAt: null,
    durationMs: 0,
    peakC: 9.5,
    troughC: 8.1,
    degreeMinutes: 12.5,
    minutesBeyond: { alert: 20, action: 5 },
    mktC: 8.9,
    updatedAt: T0,
    detail: { probes: ["p1", "p2"], samples: 42 },
    ...over,
  };
}

export function recordStoreContract(name: string, make: () => Promise<RecordStore>): void {
  describe(`RecordStore contract: ${name}`, () => {
    let store: RecordStore;
    beforeAll(async () => {
      store = await make();
    });
    afterAll(async () => {
      await store?.close();
    });

    it("upserts and lists units by site; an upsert replaces the whole record", async () => {
      const site = uid("site");
      const other = uid("site");
      const u1 = {
        unitId: uid("unit"),
        siteId: site,
        kind: "fridge" as const,
        name: "Reagents",
        profileId: "2-8C",
      };
      const u2 = { unitId: uid("unit"), siteId: site, kind: "freezer" as const };
      await store.upsertUnit(u1);
      await store.upsertUnit(u2);
      await store.upsertUnit({ unitId: uid("unit"), siteId: other, kind: "room" });
      expect(await store.getUnit(u1.unitId)).toEqual(u1);
      expect(await store.getUnit(uid("unit"))).toBeUndefined();
      const listed = await store.listUnits(site);
      expect(listed).toEqual([u1, u2].sort((a, b) => (a.unitId < b.unitId ? -1 : 1)));
      const renamed = { unitId: u1.unitId, siteId: site, kind: "fridge" as const, name: "Vaccines" };
      await store.upsertUnit(renamed);
      expect(await store.getUnit(u1.unitId)).toEqual(renamed);
      expect((await store.listUnits()).length).toBeGreaterThanOrEqual(3);
    });

    it("upserts and lists probes per unit", async () => {
      const site = uid("site");
      const unit = uid("unit");
      const p1 = {
        probeId: "p1",
        unitId: unit,
        siteId: site,
        agentId: "a1",
        driver: "modbus-rtu",
        intervalMs: 10_000,
        calibrationDueAt: null,
      };
      const p2 = {
        probeId: "p2",
        unitId: unit,
        siteId: site,
        calibrationDueAt: T0 + 90 * 24 * H,
        calibrationOffsetC: -0.2,
      };
      await store.upsertProbe(p2);
      await store.upsertProbe(p1);
      await store.upsertProbe({ ...p1, unitId: uid("unit") });
      expect(await store.listProbes(unit)).toEqual([p1, p2]);
      await store.upsertProbe({ ...p1, intervalMs: 5000 });
      expect((await store.listProbes(unit))[0]?.intervalMs).toBe(5000);
    });

    it("upserts agents with their birth and online state", async () => {
      const site = uid("site");
      const a: AgentRecord = {
        agentId: uid("agent"),
        siteId: site,
        sessionId: "s-1",
        state: "online",
        lastSeenAt: T0,
        birth: null,
        configHash: "a".repeat(64),
      };
      await store.upsertAgent(a);
      const offline = { ...a, state: "offline" as const, lastSeenAt: T0 + 60_000 };
      await store.upsertAgent(offline);
      expect(await store.listAgents(site)).toEqual([offline]);
      expect(await store.listAgents(uid("site"))).toEqual([]);
    });

    it("keeps alarms through their states and filters by unit, state and time overlap", async () => {
      const site = uid("site");
      const unit = uid("unit");
      const a1 = alarm(site, unit, { raisedAt: T0 });
      const a2 = alarm(site, unit, {
        raisedAt: T0 + 2 * H,
        kind: "probe_fault",
        tier: undefined,
        side: undefined,
      });
      const a3 = alarm(site, uid("unit"), { raisedAt: T0 + H });
      for (const a of [a1, a2, a3]) await store.upsertAlarm(a);
      const acked: AlarmRecord = {
        ...a1,
        state: "acknowledged",
        acknowledged: { by: "qa.li", comment: "door open", correctiveAction: "closed door" },
        updatedAt: T0 + 600_000,
      };
      await store.upsertAlarm(acked);
      const cleared: AlarmRecord = {
        ...acked,
        state: "cleared",
        clearedAt: T0 + 30 * 60_000,
        updatedAt: T0 + 30 * 60_000,
      };
      await store.upsertAlarm(cleared);
      expect(await store.getAlarm(a1.alarmId)).toEqual(cleared);
      expect(await store.getAlarm(uid("alarm"))).toBeUndefined();
      const ids = (as: AlarmRecord[]) => as.map((a) => a.alarmId);
      expect(ids(await store.listAlarms({ siteId: site }))).toEqual([a1.alarmId, a3.alarmId, a2.alarmId]);
      expect(ids(await store.listAlarms({ unitId: unit }))).toEqual([a1.alarmId, a2.alarmId]);
      expect(ids(await store.listAlarms({ unitId: unit, state: "raised" }))).toEqual([a2.alarmId]);
      // a1 spans T0..T0+30min; a2 is open from T0+2h.
      expect(ids(await store.listAlarms({ unitId: unit, from: T0 + H, to: T0 + 3 * H }))).toEqual([
        a2.alarmId,
      ]);
      expect(ids(await store.listAlarms({ unitId: unit, from: T0 + 60_000, to: T0 + H }))).toEqual([
        a1.alarmId,
      ]);
      expect(await store.listAlarms({ unitId: unit, to: T0 })).toEqual([]);
    });

    it("keeps excursions open until endedAt is set and filters by open and time overlap", async () => {
      const site = uid("site");
      const unit = uid("unit");
      const e1 = excursion(site, unit, { startedAt: T0 });
      const e2 = excursion(site, unit, { startedAt: T0 + 3 * H, side: "low", tier: "alert" });
      await store.upsertExcursion(e1);
      await store.upsertExcursion(e2);
      expect(await store.getExcursion(e1.excursionId)).toEqual(e1);
      const closed: ExcursionRecord = {
        ...e1,
        endedAt: T0 + H,
        durationMs: H,
        updatedAt: T0 + H,
        detail: { samples: 360 },
      };
      await store.upsertExcursion(closed);
      expect(await store.getExcursion(e1.excursionId)).toEqual(closed);
      expect(await store.getExcursion(uid("exc"))).toBeUndefined();
      const ids = (es: ExcursionRecord[]) => es.map((e) => e.excursionId);
      expect(ids(await store.listExcursions({ unitId: unit }))).toEqual([e1.excursionId, e2.excursionId]);
      expect(ids(await store.listExcursions({ siteId: site, open: true }))).toEqual([e2.excursionId]);
      expect(ids(await store.listExcursions({ siteId: site, open: false }))).toEqual([e1.excursionId]);
      expect(ids(await store.listExcursions({ unitId: unit, from: T0 + 2 * H, to: T0 + 10 * H }))).toEqual([
        e2.excursionId,
      ]);
      expect(
        ids(await store.listExcursions({ unitId: unit, from: T0 + 30 * 60_000, to: T0 + 2 * H })),
      ).toEqual([e1.excursionId]);
    });

    it("upserts gaps and filters them by agent, unit and time overlap", async () => {
      const site = uid("site");
      const agent = uid("agent");
      const g1: GapRecordRow = {
        gapId: "g-1",
        agentId: agent,
        siteId: site,
        reason: "outbox_evicted",
        unitIds: ["u1", "u2"],
        probeIds: ["p1", "p2"],
        fromObservedAt: T0,
        toObservedAt: T0 + H,
        fromSeq: 100,
        toSeq: 460,
        droppedCount: 361,
        at: T0 + 2 * H,
      };
      const g2: GapRecordRow = {
        ...g1,
        gapId: "g-2",
        reason: "connectivity",
        unitIds: ["u3"],
        fromObservedAt: T0 + 5 * H,
        toObservedAt: T0 + 6 * H,
        fromSeq: null,
        toSeq: null,
        droppedCount: null,
      };
      await store.upsertGap(g2);
      await store.upsertGap(g1);
      await store.upsertGap(g1);
      expect(await store.listGaps({ siteId: site })).toEqual([g1, g2]);
      expect(await store.listGaps({ agentId: agent, unitId: "u2" })).toEqual([g1]);
      expect(await store.listGaps({ siteId: site, from: T0 + 2 * H, to: T0 + 7 * H })).toEqual([g2]);
      expect(await store.listGaps({ agentId: uid("agent") })).toEqual([]);
    });
  });
}
