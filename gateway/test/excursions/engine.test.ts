import { encodePayload, validatePayload } from "@coldtrace/protocol";
import { describe, expect, it } from "vitest";
import type { EngineOutput, EngineReading } from "../../src/excursions/engine.ts";
import { defaultProfiles, profileFor } from "../../src/kernel/profiles.ts";
import {
  alarmsOf,
  at,
  checked,
  excursionsOf,
  gapsOf,
  HOUR,
  MIN,
  makeEngine,
  r,
  series,
  T0,
} from "./helpers.ts";

function fridge(probeIds: string[] = ["p1"], extra: { calibrationDue?: Record<string, number | null> } = {}) {
  const env = makeEngine();
  env.engine.registerUnit({ siteId: "site-1", unitId: "fridge-1", kind: "fridge", probeIds, ...extra });
  return env;
}

function feed(engine: ReturnType<typeof makeEngine>["engine"], readings: EngineReading[]): EngineOutput[] {
  // live: one reading per batch, as an agent publishing in real time would
  return checked(readings.flatMap((x) => engine.ingest([x])));
}

describe("excursions and temperature alarms", () => {
  it("records an excursion from the first reading beyond the range; the alarm waits for the delay", () => {
    const { engine } = fridge();
    // 9 °C at minutes 10, 12, 14 (6 min beyond), back to 5 °C at 16
    const outs = feed(engine, [...series(0, 2, [5, 5, 5, 5, 5, 9, 9, 9, 5])]);
    const exc = engine.excursions();
    expect(exc).toHaveLength(1);
    expect(exc[0]).toMatchObject({
      type: "excursion.closed",
      side: "high",
      tier: "alert",
      startedAt: at(10),
      endedAt: at(16),
      durationMs: 6 * MIN,
      peakC: 9,
      troughC: 9,
      degreeMinutes: 6,
      minutesBeyond: { alert: 6, action: 0 },
      mktC: 9,
    });
    // opened at the first reading beyond, updated on the out-of-range cadence (2 min), closed
    const types = excursionsOf(outs).map((e) => e.type);
    expect(types[0]).toBe("excursion.opened");
    expect(types.at(-1)).toBe("excursion.closed");
    expect(new Set(types.slice(1, -1))).toEqual(new Set(["excursion.updated"]));
    expect(engine.alarms()).toEqual([]);
  });

  it("raises the alert alarm after its delay at event time, and clears below limit − hysteresis", () => {
    const { engine } = fridge();
    const temps = [5, ...Array(11).fill(9), 7.4];
    const outs = feed(engine, series(0, 2, temps)); // 9 °C from minute 2 to 24, 7.4 at 24
    const alarms = alarmsOf(outs);
    expect(alarms.map((a) => a.type)).toEqual(["alarm.raised", "alarm.cleared"]);
    expect(alarms[0]).toMatchObject({
      kind: "temperature",
      tier: "alert",
      side: "high",
      raisedAt: at(2 + 15),
    });
    expect(alarms[1]).toMatchObject({ clearedAt: at(24), at: at(24) });
    expect(engine.excursions()[0]).toMatchObject({
      degreeMinutes: 22,
      minutesBeyond: { alert: 22, action: 0 },
    });
  });

  it("raises the action tier after its own (shorter) delay and marks the excursion tier", () => {
    const { engine } = fridge();
    const outs = feed(engine, series(0, 2, [5, 13, 13, 13, 13, 5]));
    const alarms = alarmsOf(outs).filter((a) => a.type === "alarm.raised");
    expect(alarms.map((a) => a.tier)).toEqual(["action"]);
    expect(alarms[0]!.raisedAt).toBe(at(2 + 5));
    expect(engine.excursions()[0]).toMatchObject({
      tier: "action",
      peakC: 13,
      minutesBeyond: { alert: 8, action: 8 },
      degreeMinutes: 5 * 8,
    });
  });

  it("does not flap: readings hovering at the limit keep one excursion and one alarm", () => {
    const { engine } = fridge();
    const hover = [9, 7.8, 8.2, 7.9, 8.3, 7.7, 8.1, 7.9, 8.4, 7.8, 8.2, 7.6, 8.3];
    const outs = feed(engine, series(0, 2, [5, ...hover, 7.2, 7]));
    expect(engine.excursions()).toHaveLength(1);
    const raised = alarmsOf(outs).filter((a) => a.type === "alarm.raised");
    expect(raised).toHaveLength(0); // never 15 min continuously above 8 °C
    expect(engine.excursions()[0]).toMatchObject({ startedAt: at(2), endedAt: at(2 + hover.length * 2) });
  });

  it("keeps a raised alarm until back inside limit − hysteresis", () => {
    const { engine } = fridge();
    const outs = feed(engine, series(0, 2, [5, ...Array(10).fill(9), 7.9, 7.8, 7.5]));
    const types = alarmsOf(outs).map((a) => a.type);
    expect(types).toEqual(["alarm.raised", "alarm.cleared"]);
    expect(alarmsOf(outs)[1]!.clearedAt).toBe(at(13 * 2)); // 7.9 and 7.8 are not low enough
  });

  it("watches the low side", () => {
    const { engine } = fridge();
    const outs = feed(engine, series(0, 2, [5, 1.5, 1.5, -1, -1, -1, -1, 1.5, 1.5, 1.5, 3]));
    const exc = engine.excursions();
    expect(exc).toHaveLength(1);
    expect(exc[0]).toMatchObject({ side: "low", tier: "action", troughC: -1, peakC: 1.5, startedAt: at(2) });
    // below 2 °C: 18 min; below 0 °C: 8 min; degree-minutes 0.5·4 + 3·8 + 0.5·6
    expect(exc[0]).toMatchObject({ minutesBeyond: { alert: 18, action: 8 }, degreeMinutes: 29 });
    const raised = alarmsOf(outs).filter((a) => a.type === "alarm.raised");
    // action: below 0 °C from 6, +5 min; alert: below 2 °C from 2, +15 min (18 min in all)
    expect(raised).toEqual([
      expect.objectContaining({ side: "low", tier: "action", raisedAt: at(6 + 5) }),
      expect.objectContaining({ side: "low", tier: "alert", raisedAt: at(2 + 15) }),
    ]);
  });

  it("does not interpolate across a gap: the missing time is not counted as beyond", () => {
    const { engine } = fridge();
    // 9 °C at 0 and 2, then nothing until 62 (60 min > 45 min max gap), 9 °C, then 5 °C
    feed(engine, [r(0, 9), r(2, 9), r(62, 9), r(64, 5)]);
    const exc = engine.excursions()[0]!;
    expect(exc.minutesBeyond.alert).toBe(4);
    expect(exc.durationMs).toBe(64 * MIN);
  });
});

describe("other unit kinds", () => {
  it("watches a freezer's high side only (≤ −20 °C)", () => {
    const { engine } = makeEngine();
    engine.registerUnit({ siteId: "site-1", unitId: "freezer-1", kind: "freezer" });
    const o = { unitId: "freezer-1" };
    const outs = feed(engine, series(0, 2, [-25, -60, ...Array(10).fill(-18), -21], o));
    expect(engine.excursions()).toEqual([
      expect.objectContaining({ side: "high", tier: "alert", startedAt: at(4), endedAt: at(24), peakC: -18 }),
    ]);
    expect(alarmsOf(outs).map((a) => [a.type, a.side, a.tier])).toEqual([
      ["alarm.raised", "high", "alert"],
      ["alarm.cleared", "high", "alert"],
    ]);
  });

  it("uses the transport cadence for a transit box: a 10 min silence is a gap", () => {
    const { engine } = makeEngine();
    engine.registerUnit({ siteId: "site-1", unitId: "box-1", kind: "transit_box" });
    const o = { unitId: "box-1" };
    feed(engine, [r(0, 9, o), r(5, 9, o), r(15, 9, o), r(20, 5, o)]);
    // [5, 15) is longer than 7.5 min: not counted
    expect(engine.excursions("box-1")[0]).toMatchObject({ minutesBeyond: { alert: 10, action: 0 } });
  });
});

describe("several probes in one unit", () => {
  it("lets the worst probe decide, on each side", () => {
    const { engine } = fridge(["p1", "p2"]);
    feed(engine, [
      r(0, 5, { probeId: "p1" }),
      r(0, 5, { probeId: "p2" }),
      r(2, 5, { probeId: "p1" }),
      r(2, 9, { probeId: "p2" }),
      r(4, 5, { probeId: "p1" }),
      r(4, 9.5, { probeId: "p2" }),
      r(6, 5, { probeId: "p1" }),
      r(6, 6, { probeId: "p2" }),
    ]);
    expect(engine.excursions()).toEqual([
      expect.objectContaining({
        side: "high",
        peakC: 9.5,
        startedAt: at(2),
        endedAt: at(6),
        degreeMinutes: 1 * 2 + 1.5 * 2,
      }),
    ]);
  });

  it("names the worst probe at the moment a temperature alarm is raised", () => {
    const { engine } = fridge(["p1", "p2"]);
    const readings: EngineReading[] = [];
    // p2 crosses the action limit (12 °C, 5 min) first; when the delay has passed p1 is warmer.
    for (let m = 0; m <= 20; m += 2) {
      readings.push(r(m, m < 4 ? 5 : 13.25, { probeId: "p1" }), r(m, 12.5, { probeId: "p2" }));
    }
    const raised = alarmsOf(feed(engine, readings)).filter(
      (a) => a.kind === "temperature" && a.type === "alarm.raised",
    );
    const action = raised.find((a) => a.tier === "action");
    expect(action).toMatchObject({ probeId: "p1", side: "high" });
    expect(action?.raisedAt).toBe(at(5));
    expect(action?.message).toContain("worst probe p1 at 13.25 °C");
  });

  it("breaks a tie between probes by probe id, whatever the arrival order", () => {
    const run = (order: "p1-first" | "p2-first") => {
      const { engine } = fridge(["p1", "p2"]);
      const readings: EngineReading[] = [];
      for (let m = 0; m <= 60; m += 2) {
        const pair = [r(m, 11, { probeId: "p1" }), r(m, 11, { probeId: "p2" })];
        readings.push(...(order === "p1-first" ? pair : pair.reverse()));
      }
      return alarmsOf(feed(engine, readings))
        .filter((a) => a.kind === "temperature" && a.type === "alarm.raised")
        .map((a) => a.probeId);
    };
    expect(run("p2-first")).toEqual(run("p1-first"));
    expect(new Set(run("p2-first"))).toEqual(new Set(["p1"]));
  });

  it("raises probe_drift when probes disagree beyond tolerance for the drift delay", () => {
    const { engine } = fridge(["p1", "p2"]);
    const readings: EngineReading[] = [];
    for (let m = 0; m <= 40; m += 5) {
      readings.push(r(m, 3, { probeId: "p1" }), r(m, 6.5, { probeId: "p2" }));
    }
    readings.push(r(45, 5, { probeId: "p1" }), r(45, 6, { probeId: "p2" }));
    const outs = feed(engine, readings);
    const drift = alarmsOf(outs).filter((a) => a.kind === "probe_drift");
    expect(drift.map((a) => a.type)).toEqual(["alarm.raised", "alarm.cleared"]);
    expect(drift[0]!.raisedAt).toBe(at(0 + 30));
    expect(drift[1]!.clearedAt).toBe(at(45));
    expect(engine.excursions()).toEqual([]);
  });

  it("treats fault readings as probe_fault alarms, never as temperatures", () => {
    const { engine } = fridge(["p1", "p2"]);
    const outs = feed(engine, [
      r(0, 5, { probeId: "p1" }),
      r(0, 5, { probeId: "p2" }),
      r(2, 5, { probeId: "p1" }),
      r(2, null, { probeId: "p2", quality: "sensor_fault" }),
      r(4, 5, { probeId: "p1" }),
      r(4, null, { probeId: "p2", quality: "comm_error" }),
      r(6, 5, { probeId: "p1" }),
      r(6, 5.5, { probeId: "p2" }),
    ]);
    const faults = alarmsOf(outs).filter((a) => a.kind === "probe_fault");
    expect(faults.map((a) => [a.type, a.probeId])).toEqual([
      ["alarm.raised", "p2"],
      ["alarm.cleared", "p2"],
    ]);
    expect(faults[0]!.raisedAt).toBe(at(2));
    expect(faults[1]!.clearedAt).toBe(at(6));
    expect(engine.excursions()).toEqual([]);
  });

  it("raises calibration_overdue once the record passes the due date", () => {
    const { engine, clock } = fridge(["p1"], { calibrationDue: { p1: at(30) } });
    expect(alarmsOf(feed(engine, series(0, 10, [5, 5, 5])))).toEqual([]);
    const outs = feed(engine, [r(30, 5)]);
    expect(alarmsOf(outs)).toEqual([
      expect.objectContaining({
        type: "alarm.raised",
        kind: "calibration_overdue",
        probeId: "p1",
        raisedAt: at(30),
      }),
    ]);
    // recalibrated: a new due date clears it
    clock.t = at(60);
    engine.registerUnit({
      siteId: "site-1",
      unitId: "fridge-1",
      kind: "fridge",
      calibrationDue: { p1: at(60 * 24 * 365) },
    });
    const cleared = alarmsOf(checked(engine.tick(at(61))));
    expect(cleared).toEqual([
      expect.objectContaining({ type: "alarm.cleared", kind: "calibration_overdue", clearedAt: at(60) }),
    ]);
  });
});

describe("gaps", () => {
  it("opens a connectivity gap on tick, and closes it as covered when backfill fills it", () => {
    const { engine } = fridge();
    feed(engine, series(0, 10, [5, 5, 5]));
    expect(engine.tick(at(20 + 45))).toEqual([]); // not yet beyond 45 min
    const opened = checked(engine.tick(at(20 + 46)));
    expect(gapsOf(opened)).toEqual([expect.objectContaining({ from: at(20), to: null, state: "open" })]);
    expect(alarmsOf(opened)).toEqual([
      expect.objectContaining({ type: "alarm.raised", kind: "connectivity_gap", raisedAt: at(65) }),
    ]);
    // live data resumes first: the hole [20, 120] is still unrecorded
    const live = feed(engine, [r(120, 5)]);
    expect(gapsOf(live)).toEqual([expect.objectContaining({ to: at(120), state: "open" })]);
    expect(alarmsOf(live)).toEqual([
      expect.objectContaining({ type: "alarm.cleared", kind: "connectivity_gap" }),
    ]);
    // the agent's outbox backfills the hole, late and in one batch
    const backfill = checked(engine.ingest(series(30, 10, [5, 5, 5, 5, 5, 5, 5, 5, 5])));
    expect(gapsOf(backfill)).toEqual([
      expect.objectContaining({ from: at(20), to: at(120), state: "covered" }),
    ]);
    // a covered gap never becomes a recording gap
    engine.tick(at(20 + 49 * 60));
    expect(engine.gaps()[0]).toMatchObject({ from: at(20), state: "covered" });
    expect(
      engine
        .alarms()
        .filter((a) => a.kind === "recording_gap" && a.message.includes(new Date(at(20)).toISOString())),
    ).toEqual([]);
  });

  it("turns an uncovered gap into a recording gap after the horizon", () => {
    const { engine } = fridge();
    feed(engine, [r(0, 5), r(10, 5)]);
    engine.tick(at(60));
    feed(engine, [r(300, 5)]); // data resumes, the hole [10, 300] is never backfilled
    const recordingGaps = (outs: EngineOutput[]) => gapsOf(outs).filter((g) => g.state === "recording_gap");
    expect(recordingGaps(engine.tick(at(10 + 47 * 60)))).toEqual([]);
    const outs = checked(engine.tick(at(10 + 48 * 60 + 1)));
    expect(recordingGaps(outs)).toEqual([expect.objectContaining({ from: at(10), to: at(300) })]);
    expect(alarmsOf(outs).filter((a) => a.kind === "recording_gap")).toEqual([
      expect.objectContaining({ type: "alarm.raised", raisedAt: at(10 + 48 * 60 + 1) }),
    ]);
  });

  it("records an evicted outbox range as a recording gap at once", () => {
    const { engine } = fridge();
    const gap = validatePayload("gap", {
      v: 1,
      agentId: "agent-1",
      gapId: "ev-1",
      reason: "outbox_evicted",
      unitIds: ["fridge-1", "unknown-unit"],
      probeIds: ["p1"],
      fromObservedAt: at(0),
      toObservedAt: at(90),
      fromSeq: 10,
      toSeq: 40,
      droppedCount: 31,
      at: at(200),
    });
    const outs = checked(engine.reportEvictedRange(gap, "site-1"));
    expect(gapsOf(outs)).toEqual([
      {
        gapId: "ev-1.fridge-1",
        siteId: "site-1",
        unitId: "fridge-1",
        from: at(0),
        to: at(90),
        state: "recording_gap",
      },
    ]);
    expect(alarmsOf(outs)).toEqual([
      expect.objectContaining({
        kind: "recording_gap",
        probeId: "p1",
        raisedAt: at(200),
        type: "alarm.raised",
      }),
    ]);
    expect(engine.reportEvictedRange(gap, "site-1")).toEqual([]); // idempotent
  });
});

describe("alarm lifecycle", () => {
  it("goes raised → acknowledged → cleared, each a contract event with a stable id", () => {
    const { engine } = fridge();
    const raised = alarmsOf(feed(engine, series(0, 2, [5, ...Array(10).fill(9)])));
    expect(raised).toHaveLength(1);
    const alarmId = raised[0]!.alarmId;
    const ack = {
      by: "qa.li",
      comment: "door left open",
      correctiveAction: "closed door, product moved to fridge-2",
    };
    const acked = alarmsOf(checked(engine.acknowledge(alarmId, ack, at(25))));
    expect(acked).toEqual([
      expect.objectContaining({ type: "alarm.acknowledged", alarmId, acknowledged: ack, at: at(25) }),
    ]);
    expect(engine.acknowledge(alarmId, ack, at(26))).toEqual([]); // once
    const cleared = alarmsOf(feed(engine, [r(22, 9), r(24, 6)]));
    expect(cleared).toEqual([
      expect.objectContaining({ type: "alarm.cleared", acknowledged: ack, clearedAt: at(24) }),
    ]);
    expect(engine.alarms()).toEqual([expect.objectContaining({ type: "alarm.cleared", alarmId })]);
    for (const e of [...raised, ...acked, ...cleared]) {
      expect(e.eventId.startsWith(`${alarmId}:`)).toBe(true);
      expect(() => encodePayload("alarm", e)).not.toThrow();
    }
    expect(new Set([...raised, ...acked, ...cleared].map((e) => e.eventId)).size).toBe(3);
  });

  it("accepts an acknowledgement after the alarm cleared", () => {
    const { engine } = fridge();
    const outs = feed(engine, series(0, 2, [5, ...Array(10).fill(9), 5]));
    const [raised, cleared] = alarmsOf(outs);
    expect(cleared).toMatchObject({ type: "alarm.cleared" });
    const ack = { by: "qa.li", comment: "reviewed", correctiveAction: "none needed" };
    const acked = alarmsOf(checked(engine.acknowledge(raised!.alarmId, ack, at(60))));
    expect(acked).toEqual([expect.objectContaining({ type: "alarm.acknowledged", acknowledged: ack })]);
    expect(engine.alarms()).toEqual([
      expect.objectContaining({ type: "alarm.cleared", acknowledged: ack, clearedAt: at(22) }),
    ]);
  });

  it("rejects acknowledging an unknown alarm with CT_ALARM_UNKNOWN", () => {
    const { engine } = fridge();
    expect(() => engine.acknowledge("nope-123", { by: "x", comment: "", correctiveAction: "" }, T0)).toThrow(
      expect.objectContaining({ code: "CT_ALARM_UNKNOWN" }),
    );
  });
});

describe("late data", () => {
  it("gives the same result for a late backfill as for live data", () => {
    const readings = series(0, 2, [5, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 5, 5, 1, 1, 5]);
    const live = fridge();
    feed(live.engine, readings);
    const late = fridge();
    late.engine.ingest(readings.slice(12));
    late.engine.ingest(readings.slice(0, 12).reverse());
    expect(late.engine.excursions()).toEqual(live.engine.excursions());
    expect(late.engine.alarms()).toEqual(live.engine.alarms());
  });

  it("supersedes an emitted excursion when late data shows it started earlier", () => {
    const { engine } = fridge();
    const first = excursionsOf(feed(engine, [r(0, 5), r(10, 9), r(12, 9)]));
    expect(first[0]).toMatchObject({ type: "excursion.opened", startedAt: at(10) });
    const outs = excursionsOf(checked(engine.ingest([r(5, 9)])));
    expect(outs).toHaveLength(2);
    expect(outs).toContainEqual(expect.objectContaining({ type: "excursion.opened", startedAt: at(5) }));
    expect(outs).toContainEqual(
      expect.objectContaining({
        type: "excursion.closed",
        excursionId: first[0]!.excursionId,
        durationMs: 0,
      }),
    );
    expect(engine.excursions().map((e) => e.startedAt)).toEqual([at(5)]);
  });

  it("withdraws an emitted alarm that late data shows never lasted its delay", () => {
    const { engine } = fridge();
    const raised = alarmsOf(feed(engine, [r(0, 5), r(2, 9), r(20, 9)]));
    expect(raised).toEqual([expect.objectContaining({ type: "alarm.raised", raisedAt: at(17) })]);
    const outs = alarmsOf(checked(engine.ingest([r(10, 5)])));
    expect(outs).toEqual([
      expect.objectContaining({ type: "alarm.cleared", alarmId: raised[0]!.alarmId, clearedAt: at(17) }),
    ]);
    expect(engine.alarms()).toEqual([]);
  });

  it("raises a cleared alarm again under the same id when a corrected reading shows it stayed on", () => {
    const { engine } = fridge();
    const first = alarmsOf(feed(engine, [...series(0, 2, [5, ...Array(10).fill(9), 5]), r(24, 9), r(26, 9)]));
    expect(first.map((a) => a.type)).toEqual(["alarm.raised", "alarm.cleared"]);
    // the agent re-sends 08:22 with a higher sequence number and the corrected value
    const again = alarmsOf(checked(engine.ingest([r(22, 9)])));
    expect(again).toEqual([expect.objectContaining({ type: "alarm.raised", alarmId: first[0]!.alarmId })]);
    expect(engine.alarms()).toEqual([
      expect.objectContaining({ type: "alarm.raised", alarmId: first[0]!.alarmId }),
    ]);
    expect(engine.excursions()).toEqual([expect.objectContaining({ startedAt: at(2), endedAt: null })]);
  });

  it("sets aside readings older than the lateness window and leaves the record alone", () => {
    const tooLate: EngineReading[] = [];
    const { engine } = makeEngine({
      latenessWindowMs: 2 * HOUR,
      checkpointEvery: 8,
      onSetAside: (x, reason) => {
        expect(reason).toBe("too_late");
        tooLate.push(...x);
      },
    });
    engine.registerUnit({ siteId: "site-1", unitId: "fridge-1", kind: "fridge" });
    for (let m = 0; m < 600; m += 2) engine.ingest([r(m, 5)]);
    const before = engine.excursions();
    const old = r(1, 20);
    expect(engine.ingest([old])).toEqual([]);
    expect(tooLate).toEqual([old]);
    expect(engine.stats().tooLate).toBe(1);
    // memory is bounded: about the lateness window (60 readings) plus a few checkpoints
    expect(engine.stats().retained).toBeLessThan(200);
    expect(engine.excursions()).toEqual(before);
    // still within the window: re-evaluated
    engine.ingest([r(600 - 61, 20)]);
    expect(engine.excursions()).toEqual([expect.objectContaining({ startedAt: at(539), peakC: 20 })]);
  });

  it("keeps at most about maxRetainedPerUnit readings of a fast unit", () => {
    const { engine } = makeEngine({ checkpointEvery: 8, maxRetainedPerUnit: 100 });
    engine.registerUnit({ siteId: "site-1", unitId: "fridge-1", kind: "fridge" });
    for (let s = 0; s < 2000; s += 10)
      engine.ingest(Array.from({ length: 10 }, (_, i) => r((s + i) / 60, 5)));
    expect(engine.stats().retained).toBeLessThanOrEqual(200);
    expect(engine.stats().retained).toBeGreaterThanOrEqual(100);
    // a reading older than what is kept is set aside, not re-evaluated
    engine.ingest([r(1 / 60 + 0.001, 30)]);
    expect(engine.stats().tooLate).toBe(1);
  });

  it("sets aside readings dated ahead of the gateway clock (agent clock error)", () => {
    const setAside: [EngineReading[], string][] = [];
    const { engine, clock } = makeEngine({ onSetAside: (x, reason) => setAside.push([[...x], reason]) });
    engine.registerUnit({ siteId: "site-1", unitId: "fridge-1", kind: "fridge" });
    clock.t = at(30);
    const ahead = r(30 + 16, 20);
    engine.ingest([r(0, 5), r(30 + 14, 5), ahead]);
    expect(setAside).toEqual([[[ahead], "future"]]);
    expect(engine.stats()).toMatchObject({ future: 1, readings: 2 });
    expect(engine.excursions()).toEqual([]);
  });

  it("drops exact duplicates", () => {
    const { engine } = fridge();
    const readings = series(0, 2, [5, 9, 9, 5]);
    engine.ingest(readings);
    expect(engine.ingest(readings)).toEqual([]);
    expect(engine.stats().duplicates).toBe(4);
  });
});

describe("rolling MKT", () => {
  it("is the constant temperature of a constant unit, over 30 days for storage and 24 h for transit", () => {
    const { engine } = fridge();
    feed(engine, series(0, 30, Array(200).fill(5)));
    expect(engine.rollingMkt("fridge-1")).toEqual({ windowMs: 30 * 24 * HOUR, mktC: 5 });
    engine.registerUnit({ siteId: "site-1", unitId: "box-1", kind: "transit_box" });
    engine.ingest(series(0, 5, [4, 6, 4, 6, 4, 6, 4], { unitId: "box-1" }));
    const box = engine.rollingMkt("box-1");
    expect(box.windowMs).toBe(24 * HOUR);
    expect(box.mktC!).toBeGreaterThan(5);
    expect(box.mktC!).toBeLessThan(5.1);
  });

  it("forgets hours older than the window", () => {
    const { engine } = makeEngine();
    engine.registerUnit({ siteId: "site-1", unitId: "box-1", kind: "transit_box" });
    engine.ingest(series(0, 5, Array(12 * 3).fill(30), { unitId: "box-1" })); // 3 h at 30 °C
    engine.ingest(series(180, 5, Array(12 * 30).fill(5), { unitId: "box-1" })); // then 30 h at 5 °C
    expect(engine.rollingMkt("box-1").mktC).toBeCloseTo(5, 6);
  });
});

describe("profiles", () => {
  it("ships validated defaults per kind", () => {
    expect(defaultProfiles.fridge).toMatchObject({ range: { low: 2, high: 8 } });
    expect(defaultProfiles.freezer.range).toEqual({ high: -20 });
    expect(defaultProfiles.room.range).toEqual({ low: 15, high: 25 });
    expect(defaultProfiles.transit_box.cadence.recordMs).toBe(5 * MIN);
    expect(() => profileFor("fridge", { action: { high: 7 } })).toThrow(/action/);
  });
});
