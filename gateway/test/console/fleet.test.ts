/** The overview's rules: a unit's state and why, probe faults, calibration, worst-first order. */
import { describe, expect, it } from "vitest";
import { tileSignature, type UnitFacts, unitOverviewOf, worstFirst } from "../../src/console/fleet.ts";
import type { AlarmRecord, ExcursionRecord, StoredReading } from "../../src/storage/types.ts";

const MIN = 60_000;
const NOW = Date.UTC(2026, 11, 1, 8, 0, 0);

function reading(probeId: string, tempC: number | null, minutesAgo = 1, quality = "ok"): StoredReading {
  return {
    agentId: "a-1",
    seq: 1,
    siteId: "s-1",
    unitId: "u-1",
    probeId,
    observedAt: NOW - minutesAgo * MIN,
    receivedAt: NOW - minutesAgo * MIN + 500,
    tempC,
    quality: quality as StoredReading["quality"],
    backfill: false,
  };
}

function alarm(over: Partial<AlarmRecord>): AlarmRecord {
  return {
    alarmId: "al-1",
    siteId: "s-1",
    unitId: "u-1",
    kind: "temperature",
    raisedAt: NOW - 10 * MIN,
    message: "",
    state: "raised",
    updatedAt: NOW - 10 * MIN,
    ...over,
  } as AlarmRecord;
}

const excursion = (tier: "alert" | "action"): ExcursionRecord =>
  ({
    excursionId: `x-${tier}`,
    siteId: "s-1",
    unitId: "u-1",
    unitKind: "fridge",
    side: "high",
    tier,
    startedAt: NOW - 20 * MIN,
    endedAt: null,
    durationMs: 20 * MIN,
    peakC: 11,
    troughC: 9,
    degreeMinutes: 40,
    minutesBeyond: { alert: 20, action: 0 },
    mktC: 10,
    updatedAt: NOW,
    detail: {},
  }) as ExcursionRecord;

function facts(over: Partial<UnitFacts> = {}): UnitFacts {
  return {
    unit: { unitId: "u-1", siteId: "s-1", kind: "fridge", name: "Fridge 1" },
    probes: [
      { probeId: "p-1", unitId: "u-1", siteId: "s-1", agentId: "a-1", calibrationDueAt: null },
      { probeId: "p-2", unitId: "u-1", siteId: "s-1", agentId: "a-1", calibrationDueAt: null },
    ],
    latest: new Map([
      ["p-1", reading("p-1", 5.1)],
      ["p-2", reading("p-2", 4.9)],
    ]),
    agent: {
      agentId: "a-1",
      siteId: "s-1",
      sessionId: "x",
      state: "online",
      lastSeenAt: NOW - 60 * MIN,
      birth: null,
      configHash: null,
    },
    openAlarms: [],
    openExcursions: [],
    range: { low: 2, high: 8 },
    maxGapMs: 45 * MIN,
    now: NOW,
    calibrationDueSoonMs: 30 * 24 * 60 * MIN,
    ...over,
  };
}

describe("unit state", () => {
  it.each([
    ["ok", "in_range", {}],
    ["action", "temperature_action", { openAlarms: [alarm({ tier: "action" }), alarm({ tier: "alert" })] }],
    ["action", "excursion_action", { openExcursions: [excursion("action")] }],
    ["alert", "temperature_alert", { openAlarms: [alarm({ tier: "alert", state: "acknowledged" })] }],
    ["alert", "excursion_alert", { openExcursions: [excursion("alert")] }],
    ["alert", "probe_drift", { openAlarms: [alarm({ kind: "probe_drift" })] }],
    ["offline", "no_agent", { agent: undefined }],
    ["offline", "agent_offline", { agent: { ...facts().agent!, state: "offline" as const } }],
    ["gap", "no_readings", { latest: new Map() }],
    ["gap", "readings_late", { latest: new Map([["p-1", reading("p-1", 5, 46)]]) }],
    ["gap", "gap_alarm", { openAlarms: [alarm({ kind: "connectivity_gap" })] }],
  ] as const)("%s (%s)", (state, reason, over) => {
    const tile = unitOverviewOf(facts(over as Partial<UnitFacts>));
    expect({ state: tile.state, reason: tile.reason }).toEqual({ state, reason });
  });

  it("a too-warm fridge we can still hear outranks one we cannot", () => {
    const tile = unitOverviewOf(facts({ agent: undefined, openAlarms: [alarm({ tier: "alert" })] }));
    expect(tile.state).toBe("alert");
  });

  it("counts open and unacknowledged alarms, and names the worst open excursion", () => {
    const tile = unitOverviewOf(
      facts({
        openAlarms: [
          alarm({ alarmId: "a", tier: "alert" }),
          alarm({ alarmId: "b", state: "acknowledged", tier: "alert" }),
        ],
        openExcursions: [excursion("alert"), excursion("action")],
      }),
    );
    expect(tile).toMatchObject({
      openAlarms: 2,
      unacknowledgedAlarms: 1,
      openExcursion: { excursionId: "x-action", tier: "action" },
    });
  });
});

describe("probes", () => {
  it("latest temperature and time per probe; a fault from the reading's quality or an open probe_fault alarm", () => {
    const tile = unitOverviewOf(
      facts({
        latest: new Map([
          ["p-1", reading("p-1", null, 1, "sensor_fault")],
          ["p-2", reading("p-2", 4.9)],
        ]),
        openAlarms: [alarm({ kind: "probe_fault", probeId: "p-2" })],
      }),
    );
    expect(tile.probes.map((p) => [p.probeId, p.tempC, p.quality, p.fault])).toEqual([
      ["p-1", null, "sensor_fault", true],
      ["p-2", 4.9, "ok", true],
    ]);
    expect(tile.lastReadingAt).toBe(NOW - MIN);
  });

  it("calibration: overdue, due soon, ok, unknown", () => {
    const due = (days: number | null) => ({
      probeId: `p-${days}`,
      unitId: "u-1",
      siteId: "s-1",
      calibrationDueAt: days === null ? null : NOW + days * 24 * 60 * MIN,
    });
    const tile = unitOverviewOf(facts({ probes: [due(-1), due(10), due(90), due(null)], latest: new Map() }));
    expect(Object.fromEntries(tile.probes.map((p) => [p.probeId, p.calibration]))).toEqual({
      "p--1": "overdue",
      "p-10": "due_soon",
      "p-90": "ok",
      "p-null": "unknown",
    });
  });

  it("the agent was last seen at its newest reading when that is later than its last state message", () => {
    const tile = unitOverviewOf(facts());
    expect(tile.agent).toEqual({ agentId: "a-1", state: "online", lastSeenAt: NOW - MIN + 500 });
  });
});

describe("worst first", () => {
  it("orders by state, then unacknowledged alarms, then site and name (numbers in names by value)", () => {
    const tile = (unitId: string, siteId: string, name: string, over: Partial<UnitFacts>) =>
      unitOverviewOf(facts({ unit: { unitId, siteId, kind: "fridge", name }, ...over }));
    const units = [
      tile("ok-10", "s-1", "Fridge 10", {}),
      tile("ok-9", "s-1", "Fridge 9", {}),
      tile("ok-b", "s-0", "Fridge 1", {}),
      tile("gap", "s-1", "G", { latest: new Map() }),
      tile("off", "s-1", "O", { agent: undefined }),
      tile("alert-1", "s-1", "A1", { openAlarms: [alarm({ tier: "alert" })] }),
      tile("alert-2", "s-1", "A2", {
        openAlarms: [alarm({ tier: "alert" }), alarm({ alarmId: "x", kind: "probe_fault" })],
      }),
      tile("action", "s-2", "X", { openExcursions: [excursion("action")] }),
    ];
    expect(units.sort(worstFirst).map((u) => u.unitId)).toEqual([
      "action",
      "alert-2",
      "alert-1",
      "off",
      "gap",
      "ok-b",
      "ok-9",
      "ok-10",
    ]);
  });

  it("a tile's signature ignores temperatures (the readings stream brings those) but not its state", () => {
    const a = unitOverviewOf(facts());
    const warmer = unitOverviewOf(
      facts({
        latest: new Map([
          ["p-1", reading("p-1", 6.3)],
          ["p-2", reading("p-2", 4.9)],
        ]),
      }),
    );
    const alerting = unitOverviewOf(facts({ openAlarms: [alarm({ tier: "alert" })] }));
    expect(tileSignature(warmer)).toBe(tileSignature(a));
    expect(tileSignature(alerting)).not.toBe(tileSignature(a));
  });
});
