/**
 * Readings whose agent doubted its clock (reading.timeQuality, docs/technician/clock.md) are
 * not evaluated as fact: `unsynchronised` and `stepped` readings are set aside for QA, with
 * their own reason; `reanchored` ones (corrected by the agent) count like any other.
 */
import { describe, expect, it } from "vitest";
import type { EngineReading } from "../../src/excursions/engine.ts";
import { at, makeEngine, series } from "./helpers.ts";

describe("time quality of readings", () => {
  function fridge() {
    const setAside: { reason: string; readings: readonly EngineReading[] }[] = [];
    const env = makeEngine({ onSetAside: (readings, reason) => setAside.push({ reason, readings }) });
    env.engine.registerUnit({ siteId: "site-1", unitId: "fridge-1", kind: "fridge", probeIds: ["p1"] });
    return { ...env, setAside };
  }

  it("sets aside readings taken while the agent's clock was untrusted, instead of opening an excursion", () => {
    const { engine, setAside } = fridge();
    const warm = series(0, 2, [5, 9, 9, 9, 9, 5]).map((x, i) =>
      i >= 1 && i <= 4
        ? { ...x, timeQuality: i % 2 ? ("unsynchronised" as const) : ("stepped" as const) }
        : x,
    );
    for (const x of warm) engine.ingest([x]);
    expect(engine.excursions()).toEqual([]);
    expect(setAside.map((s) => s.reason)).toEqual([
      "untrusted_time",
      "untrusted_time",
      "untrusted_time",
      "untrusted_time",
    ]);
    expect(setAside.flatMap((s) => s.readings).map((x) => x.observedAt)).toEqual([
      at(2),
      at(4),
      at(6),
      at(8),
    ]);
    expect(engine.stats()).toMatchObject({ untrustedTime: 4, readings: 2 });
  });

  it("evaluates re-anchored readings like any other", () => {
    const { engine, setAside } = fridge();
    for (const x of series(0, 2, [5, 9, 9, 9, 9, 5]).map((x) => ({
      ...x,
      timeQuality: "reanchored" as const,
    })))
      engine.ingest([x]);
    expect(setAside).toEqual([]);
    expect(engine.excursions()).toHaveLength(1);
    expect(engine.excursions()[0]).toMatchObject({ startedAt: at(2), endedAt: at(10) });
  });
});
