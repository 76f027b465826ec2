import { describe, expect, it } from "vitest";
import {
  MKT_DELTA_H_OVER_R_K,
  MktAccumulator,
  meanKineticTemperatureC,
  summarizeExposure,
  type TempPoint,
} from "../../src/excursions/metrics.ts";

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 1);

/** The USP <1079.2> formula written out literally, with explicit weights. */
function literalMkt(temps: number[], weights: number[]): number {
  let num = 0;
  let den = 0;
  temps.forEach((c, i) => {
    num += weights[i]! * Math.exp(-10_000 / (c + 273.15));
    den += weights[i]!;
  });
  return 10_000 / -Math.log(num / den) - 273.15;
}

const series = (...pairs: [number, number][]): TempPoint[] =>
  pairs.map(([m, tempC]) => ({ t: T0 + m * MIN, tempC }));

describe("meanKineticTemperatureC", () => {
  it("uses ΔH/R = 10,000 K", () => {
    expect(MKT_DELTA_H_OVER_R_K).toBe(10_000);
  });

  it("is the temperature itself for a constant series", () => {
    expect(meanKineticTemperatureC(series([0, 5], [30, 5], [60, 5]))).toBeCloseTo(5, 9);
    expect(meanKineticTemperatureC(series([0, -25]))).toBeCloseTo(-25, 9);
  });

  it("matches the literal formula for evenly spaced readings", () => {
    const pts = series([0, 2], [10, 8], [20, 25], [30, 4]);
    // step rule: the last reading holds no time, the first three 10 min each
    expect(meanKineticTemperatureC(pts)).toBeCloseTo(literalMkt([2, 8, 25], [1, 1, 1]), 9);
  });

  it("weights each reading by the time it holds (uneven sampling)", () => {
    const pts = series([0, 5], [50, 30], [60, 5]);
    const expected = literalMkt([5, 30], [50, 10]);
    expect(meanKineticTemperatureC(pts)).toBeCloseTo(expected, 9);
    // and that differs from the unweighted textbook value
    expect(Math.abs(expected - literalMkt([5, 30], [1, 1]))).toBeGreaterThan(1);
  });

  it("is at least the arithmetic mean and at most the maximum", () => {
    const pts = series([0, 2], [10, 12], [20, 6], [30, 20], [40, 3], [50, 3]);
    const mkt = meanKineticTemperatureC(pts)!;
    const mean = (2 + 12 + 6 + 20 + 3) / 5;
    expect(mkt).toBeGreaterThan(mean);
    expect(mkt).toBeLessThan(20);
  });

  it("reproduces a hand-worked example: half the time at 20 °C, half at 30 °C gives 26.26 °C", () => {
    // By hand: 10000/293.15 = 34.1122, 10000/303.15 = 32.9870; e^(34.1122−32.9870) = 3.0810;
    // ln((1 + 3.0810)/2) = 0.7133; −ln(mean) = 34.1122 − 0.7133 = 33.3989;
    // 10000/33.3989 = 299.41 K = 26.26 °C (arithmetic mean 25 °C).
    const mkt = meanKineticTemperatureC(series([0, 20], [60, 30], [120, 30]))!;
    expect(mkt).toBeCloseTo(literalMkt([20, 30], [1, 1]), 9);
    expect(mkt).toBeCloseTo(26.26, 2);
  });

  it("does not weight across a gap longer than maxGapMs", () => {
    const pts = series([0, 5], [10, 5], [200, 40], [210, 40]);
    // [10, 200) is a gap: only [0,10) at 5 and [200,210) at 40 carry weight
    expect(meanKineticTemperatureC(pts, { maxGapMs: 15 * MIN })).toBeCloseTo(literalMkt([5, 40], [1, 1]), 9);
  });

  it("falls back to equal weights and returns null for nothing", () => {
    expect(meanKineticTemperatureC([])).toBeNull();
    expect(meanKineticTemperatureC(series([0, 4], [100, 10]), { maxGapMs: MIN })).toBeCloseTo(
      literalMkt([4, 10], [1, 1]),
      9,
    );
  });

  it("does not underflow for deep-frozen series", () => {
    expect(meanKineticTemperatureC(series([0, -80], [10, -80], [20, -70]))).toBeCloseTo(-80, 6);
  });

  it("merges partial accumulators exactly", () => {
    const a = new MktAccumulator();
    const b = new MktAccumulator();
    const all = new MktAccumulator();
    for (const [c, w] of [
      [5, 3],
      [9, 1],
    ] as const) {
      a.add(c, w);
      all.add(c, w);
    }
    for (const [c, w] of [
      [-20, 2],
      [30, 1],
    ] as const) {
      b.add(c, w);
      all.add(c, w);
    }
    a.merge(b.snapshot());
    expect(a.valueC()).toBeCloseTo(all.valueC()!, 9);
  });
});

describe("summarizeExposure", () => {
  it("counts time and degree-minutes beyond limits with the step rule", () => {
    // 5 °C for 10 min, 9 °C for 5 min, 11 °C for 5 min, 7 °C to the end (window 0–30)
    const pts = series([0, 5], [10, 9], [15, 11], [20, 7]);
    const s = summarizeExposure(pts, { high: 8, low: 2 }, { from: T0, to: T0 + 30 * MIN });
    expect(s.minutesAbove).toBe(10);
    expect(s.degreeMinutesAbove).toBeCloseTo(1 * 5 + 3 * 5, 9);
    expect(s.minutesBelow).toBe(0);
    expect(s.peakC).toBe(11);
    expect(s.troughC).toBe(5);
    expect(s.coveredMs).toBe(30 * MIN);
    expect(s.uncoveredMs).toBe(0);
    expect(s.mktC).toBeCloseTo(literalMkt([5, 9, 11, 7], [10, 5, 5, 10]), 9);
  });

  it("counts the low side", () => {
    const pts = series([0, 3], [10, 1], [20, -1], [25, 4]);
    const s = summarizeExposure(pts, { high: 8, low: 2 }, { from: T0, to: T0 + 30 * MIN });
    expect(s.minutesBelow).toBe(15);
    expect(s.degreeMinutesBelow).toBeCloseTo(1 * 10 + 3 * 5, 9);
    expect(s.troughC).toBe(-1);
  });

  it("clips to the window and uses the reading in effect at its start", () => {
    const pts = series([0, 12], [20, 5], [40, 12]);
    const s = summarizeExposure(pts, { high: 8 }, { from: T0 + 10 * MIN, to: T0 + 45 * MIN });
    expect(s.minutesAbove).toBe(10 + 5);
    expect(s.degreeMinutesAbove).toBeCloseTo(4 * 15, 9);
    expect(s.peakC).toBe(12);
    expect(s.coveredMs).toBe(35 * MIN);
  });

  it("does not interpolate across a gap: it is uncovered time, not an excursion", () => {
    const pts = series([0, 10], [5, 10], [65, 5], [70, 5]);
    const s = summarizeExposure(pts, { high: 8 }, { from: T0, to: T0 + 75 * MIN }, { maxGapMs: 10 * MIN });
    expect(s.minutesAbove).toBe(5);
    expect(s.degreeMinutesAbove).toBeCloseTo(10, 9);
    expect(s.uncoveredMs).toBe(60 * MIN);
    expect(s.coveredMs).toBe(15 * MIN);
  });

  it("reports an empty window without readings", () => {
    const s = summarizeExposure([], { high: 8 }, { from: T0, to: T0 + MIN });
    expect(s).toMatchObject({ peakC: null, troughC: null, mktC: null, coveredMs: 0, uncoveredMs: MIN });
  });
});
