/**
 * The engine runs on event time: whatever order and batches the readings arrive in (live, a
 * backfill hours late, duplicates from a QoS 1 redelivery), the final excursions and alarms are
 * the same records, ids included, as when every reading arrived in order.
 */

import { validatePayload } from "@coldtrace/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { EngineOutput, EngineReading } from "../../src/excursions/engine.ts";
import { MIN, makeEngine, T0 } from "./helpers.ts";

const temps = [-2, 0.5, 1.5, 3, 5, 7.6, 7.8, 8.2, 9, 11, 13];
const stepsMin = [1, 2, 2, 5, 10, 30, 50];

const probeSeries = (unitId: string, probeId: string) =>
  fc
    .array(
      fc.record({
        step: fc.constantFrom(...stepsMin),
        tempC: fc.constantFrom(...temps),
        fault: fc.integer({ min: 0, max: 19 }).map((x) => x === 0),
      }),
      { minLength: 1, maxLength: 60 },
    )
    .map((rows) => {
      let t = T0;
      let seq = 1;
      return rows.map((row): EngineReading => {
        t += row.step * MIN;
        return {
          siteId: "site-1",
          unitId,
          probeId,
          agentId: "agent-1",
          seq: seq++,
          observedAt: t,
          tempC: row.fault ? null : row.tempC,
          quality: row.fault ? "sensor_fault" : "ok",
        };
      });
    });

const scenario = fc
  .tuple(probeSeries("fridge-1", "p1"), probeSeries("fridge-1", "p2"), probeSeries("box-1", "b1"))
  .map(([a, b, c]) => [...a, ...b, ...c])
  .chain((readings) =>
    fc.record({
      readings: fc.constant(readings),
      order: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), {
        minLength: readings.length,
        maxLength: readings.length,
      }),
      duplicates: fc.array(fc.nat({ max: readings.length - 1 }), { maxLength: 20 }),
      cuts: fc.array(fc.nat({ max: readings.length + 20 }), { maxLength: 15 }),
      checkpointEvery: fc.constantFrom(8, 16, 256),
    }),
  );

function engineFor(checkpointEvery: number) {
  const { engine } = makeEngine({ checkpointEvery });
  engine.registerUnit({
    siteId: "site-1",
    unitId: "fridge-1",
    kind: "fridge",
    probeIds: ["p1", "p2"],
    calibrationDue: { p1: T0 + 3 * 60 * MIN },
  });
  engine.registerUnit({ siteId: "site-1", unitId: "box-1", kind: "transit_box" });
  return engine;
}

const byTime = (a: EngineReading, b: EngineReading) =>
  a.observedAt - b.observedAt || a.unitId.localeCompare(b.unitId) || a.probeId.localeCompare(b.probeId);

describe("event time", () => {
  it("gives the same excursions and alarms for any arrival order, batching and duplicates", () => {
    fc.assert(
      fc.property(scenario, ({ readings, order, duplicates, cuts, checkpointEvery }) => {
        const reference = engineFor(256);
        reference.ingest([...readings].sort(byTime));

        const arrival = readings
          .map((r, i) => ({ r, k: order[i]! }))
          .sort((a, b) => a.k - b.k)
          .map((x) => x.r);
        for (const d of duplicates) arrival.splice((d * 7) % (arrival.length + 1), 0, readings[d]!);
        const bounds = [
          ...new Set([0, ...cuts.map((c) => Math.min(c, arrival.length)), arrival.length]),
        ].sort((a, b) => a - b);
        const late = engineFor(checkpointEvery);
        for (let i = 0; i + 1 < bounds.length; i++) late.ingest(arrival.slice(bounds[i], bounds[i + 1]));

        expect(late.excursions()).toEqual(reference.excursions());
        expect(late.alarms()).toEqual(reference.alarms());
        for (const unitId of ["fridge-1", "box-1"]) {
          expect(late.rollingMkt(unitId)).toEqual(reference.rollingMkt(unitId));
        }
      }),
      { numRuns: Number(process.env.FC_NUM_RUNS ?? 300) },
    );
  });

  it("gives the same result live, one reading at a time, as in one sorted batch", () => {
    fc.assert(
      fc.property(scenario, ({ readings }) => {
        const sorted = [...readings].sort(byTime);
        const reference = engineFor(256);
        reference.ingest(sorted);
        const live = engineFor(8);
        for (const r of sorted) live.ingest([r]);
        expect(live.excursions()).toEqual(reference.excursions());
        expect(live.alarms()).toEqual(reference.alarms());
      }),
      { numRuns: 100 },
    );
  });

  it("publishes events whose last word per id matches the final records", () => {
    fc.assert(
      fc.property(scenario, ({ readings, order, cuts, checkpointEvery }) => {
        const arrival = readings
          .map((r, i) => ({ r, k: order[i]! }))
          .sort((a, b) => a.k - b.k)
          .map((x) => x.r);
        const bounds = [
          ...new Set([0, ...cuts.map((c) => Math.min(c, arrival.length)), arrival.length]),
        ].sort((a, b) => a - b);
        const engine = engineFor(checkpointEvery);
        const outs: EngineOutput[] = [];
        for (let i = 0; i + 1 < bounds.length; i++)
          outs.push(...engine.ingest(arrival.slice(bounds[i], bounds[i + 1])));

        const lastExc = new Map<string, ReturnType<typeof validatePayload<"excursion">>>();
        const lastAlarm = new Map<string, ReturnType<typeof validatePayload<"alarm">>>();
        for (const o of outs) {
          if (o.type === "excursion") lastExc.set(o.event.excursionId, validatePayload("excursion", o.event));
          if (o.type === "alarm") lastAlarm.set(o.event.alarmId, validatePayload("alarm", o.event));
        }
        const finalExc = new Map(engine.excursions().map((e) => [e.excursionId, e]));
        for (const [id, e] of finalExc) {
          const last = lastExc.get(id);
          expect(last, id).toBeDefined();
          if (e.endedAt !== null) {
            const { eventId: _a, type: _b, ...want } = e;
            const { eventId: _c, type: t, ...got } = last!;
            expect(t).toBe("excursion.closed");
            expect(got).toEqual(want);
          } else {
            expect(["excursion.opened", "excursion.updated"]).toContain(last!.type);
            expect(last!.startedAt).toBe(e.startedAt);
          }
        }
        for (const [id, last] of lastExc) {
          if (!finalExc.has(id)) expect(last).toMatchObject({ type: "excursion.closed", durationMs: 0 });
        }
        const finalAlarms = new Map(engine.alarms().map((a) => [a.alarmId, a]));
        for (const [id, a] of finalAlarms) {
          expect(lastAlarm.get(id)).toMatchObject({ type: a.type, raisedAt: a.raisedAt });
          if (a.clearedAt !== undefined) expect(lastAlarm.get(id)!.clearedAt).toBe(a.clearedAt);
        }
        for (const [id, last] of lastAlarm) {
          if (!finalAlarms.has(id)) expect(last.type).toBe("alarm.cleared");
        }
      }),
      { numRuns: Number(process.env.FC_NUM_RUNS ?? 200) },
    );
  });
});
