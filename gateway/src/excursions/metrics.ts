/**
 * Exposure metrics over a temperature series: time beyond limits, degree-minutes, peak and
 * trough, and mean kinetic temperature (MKT). Pure functions, no I/O; the excursion engine and
 * the lot module (exposure of one lot over its own time in a unit) both use them.
 *
 * Interpolation rule (docs/qa/excursion-rules.md, "Between two readings"): STEP, sample-and-hold.
 * A reading's temperature holds from its observedAt until the next reading:
 *
 *     tempC
 *       9 ┤      ┌────────┐            reading at t1 = 9 °C holds over [t1, t2)
 *       8 ┼──────┼ limit ─┼──────
 *       5 ┤──────┘        └──────     t0 = 5 °C holds over [t0, t1)
 *         t0     t1       t2
 *
 * Step is the conservative choice for a recorder: it never invents a temperature that was not
 * measured, and a reading beyond the limit counts from the moment it was taken. A segment longer
 * than `maxGapMs` (the unit's expected recording interval plus grace) is NOT interpolated: its
 * time is "uncovered" (a gap in the record, not an excursion) and adds nothing to any metric.
 * The last reading of a series holds until the end of the window when that span is at most
 * `maxGapMs`.
 */

/** USP <1079.2> Mean Kinetic Temperature: ΔH/R for ΔH = 83.144 kJ/mol, R = 8.3144 J/(mol·K). */
export const MKT_DELTA_H_OVER_R_K = 10_000;

const KELVIN_OFFSET = 273.15;
const MS_PER_MIN = 60_000;

/** One ok reading: event time (ms since epoch) and temperature. Series are sorted by `t`. */
export interface TempPoint {
  t: number;
  tempC: number;
}

export interface Limits {
  high?: number;
  low?: number;
}

export interface ExposureSummary {
  from: number;
  to: number;
  /** Highest / lowest temperature in effect inside the window; null when no reading applies. */
  peakC: number | null;
  troughC: number | null;
  /** Minutes (covered time only) with temperature strictly above `limits.high` / below `limits.low`. */
  minutesAbove: number;
  minutesBelow: number;
  /** ∫ (tempC − high) dt over time above high, and ∫ (low − tempC) dt below low, in °C·min. */
  degreeMinutesAbove: number;
  degreeMinutesBelow: number;
  /** Time-weighted MKT over the covered part of the window (°C), null without readings. */
  mktC: number | null;
  /** Milliseconds of the window with a reading in effect, and without (gaps, before the first reading). */
  coveredMs: number;
  uncoveredMs: number;
}

/**
 * MKT partial sums as plain data (JSON-safe), so the engine can keep them in its serialisable
 * state and merge them: every term is divided by the term of a reference temperature (the
 * first one seen), so very cold series do not underflow to 0.
 *
 *   MKT = (ΔH/R) / (−ln( Σ wᵢ·e^(−ΔH/(R·Tᵢ)) / Σ wᵢ ))        Tᵢ in kelvin, wᵢ = time weight
 *
 * `refInvK` is null until the first term (JSON has no NaN).
 */
export interface MktSums {
  refInvK: number | null;
  sum: number;
  weight: number;
}

export const emptyMktSums = (): MktSums => ({ refInvK: null, sum: 0, weight: 0 });

/** Add one term in place; a weight ≤ 0 adds nothing. */
export function addMkt(m: MktSums, tempC: number, weight: number): void {
  if (!(weight > 0)) return;
  const invK = 1 / (tempC + KELVIN_OFFSET);
  if (m.refInvK === null) m.refInvK = invK;
  m.sum += weight * Math.exp(MKT_DELTA_H_OVER_R_K * (m.refInvK - invK));
  m.weight += weight;
}

/** Merge `s` into `m` in place (e.g. hourly buckets of a rolling window). */
export function mergeMkt(m: MktSums, s: MktSums): void {
  if (!(s.weight > 0) || s.refInvK === null) return;
  if (m.refInvK === null) {
    m.refInvK = s.refInvK;
    m.sum = s.sum;
    m.weight = s.weight;
    return;
  }
  m.sum += s.sum * Math.exp(MKT_DELTA_H_OVER_R_K * (m.refInvK - s.refInvK));
  m.weight += s.weight;
}

/** MKT in °C of the sums, or null when nothing was added. */
export function mktOf(m: MktSums): number | null {
  if (m.weight <= 0 || m.refInvK === null) return null;
  const lnMean = Math.log(m.sum / m.weight) - MKT_DELTA_H_OVER_R_K * m.refInvK;
  return MKT_DELTA_H_OVER_R_K / -lnMean - KELVIN_OFFSET;
}

/** The sums above behind a small class, for callers that accumulate in a loop. */
export class MktAccumulator {
  readonly #sums = emptyMktSums();

  add(tempC: number, weight: number): void {
    addMkt(this.#sums, tempC, weight);
  }

  get totalWeight(): number {
    return this.#sums.weight;
  }

  /** MKT in °C, or null when nothing was added. */
  valueC(): number | null {
    return mktOf(this.#sums);
  }

  /** Raw sums, to merge partial sums (e.g. hourly buckets of a rolling window). */
  snapshot(): MktSums {
    return { ...this.#sums };
  }

  merge(s: MktSums): void {
    mergeMkt(this.#sums, s);
  }
}

/**
 * Time-weighted mean kinetic temperature of a sorted series (USP <1079.2>, ΔH/R = 10,000 K).
 * Each reading is weighted by the time it holds (step rule) until the next reading; segments
 * longer than `opts.maxGapMs` carry no weight (not interpolated across a gap). When no segment
 * carries weight (one reading, or only gaps) the readings are weighted equally, which is the
 * textbook formula for evenly spaced samples. Returns null for an empty series.
 */
export function meanKineticTemperatureC(
  points: readonly TempPoint[],
  opts: { maxGapMs?: number } = {},
): number | null {
  const maxGapMs = opts.maxGapMs ?? Number.POSITIVE_INFINITY;
  const acc = new MktAccumulator();
  for (let i = 0; i + 1 < points.length; i++) {
    const p = points[i]!;
    const dt = points[i + 1]!.t - p.t;
    if (dt > 0 && dt <= maxGapMs) acc.add(p.tempC, dt);
  }
  if (acc.totalWeight > 0) return acc.valueC();
  const equal = new MktAccumulator();
  for (const p of points) equal.add(p.tempC, 1);
  return equal.valueC();
}

/**
 * Exposure of a series over `window` against `limits`, with the step rule above. Points may
 * start before the window (the reading in effect at `window.from` counts from `from`) and end
 * after it. Time-weighted MKT over the covered part; falls back to equal weights of the readings
 * inside the window when nothing is covered.
 */
export function summarizeExposure(
  points: readonly TempPoint[],
  limits: Limits,
  window: { from: number; to: number },
  opts: { maxGapMs?: number } = {},
): ExposureSummary {
  const maxGapMs = opts.maxGapMs ?? Number.POSITIVE_INFINITY;
  const { from, to } = window;
  const out: ExposureSummary = {
    from,
    to,
    peakC: null,
    troughC: null,
    minutesAbove: 0,
    minutesBelow: 0,
    degreeMinutesAbove: 0,
    degreeMinutesBelow: 0,
    mktC: null,
    coveredMs: 0,
    uncoveredMs: Math.max(0, to - from),
  };
  if (!(to > from) || points.length === 0) return out;

  const acc = new MktAccumulator();
  const inWindow = new MktAccumulator();
  let peak = Number.NEGATIVE_INFINITY;
  let trough = Number.POSITIVE_INFINITY;
  let coveredMs = 0;
  let aboveMs = 0;
  let belowMs = 0;
  let dmAbove = 0;
  let dmBelow = 0;

  // First point that can matter: the last one at or before `from`.
  let lo = 0;
  let hi = points.length - 1;
  let start = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid]!.t <= from) {
      start = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }

  for (let i = start; i < points.length; i++) {
    const p = points[i]!;
    if (p.t >= to) break;
    const next = points[i + 1];
    const segEnd = next ? next.t : to;
    const span = segEnd - p.t;
    if (p.t >= from) {
      inWindow.add(p.tempC, 1);
      if (p.tempC > peak) peak = p.tempC;
      if (p.tempC < trough) trough = p.tempC;
    }
    if (span <= 0 || span > maxGapMs) continue; // not interpolated across a gap
    const a = Math.max(p.t, from);
    const b = Math.min(segEnd, to);
    if (b <= a) continue;
    const dt = b - a;
    coveredMs += dt;
    acc.add(p.tempC, dt);
    if (p.tempC > peak) peak = p.tempC;
    if (p.tempC < trough) trough = p.tempC;
    if (limits.high !== undefined && p.tempC > limits.high) {
      aboveMs += dt;
      dmAbove += ((p.tempC - limits.high) * dt) / MS_PER_MIN;
    }
    if (limits.low !== undefined && p.tempC < limits.low) {
      belowMs += dt;
      dmBelow += ((limits.low - p.tempC) * dt) / MS_PER_MIN;
    }
  }

  out.peakC = Number.isFinite(peak) ? peak : null;
  out.troughC = Number.isFinite(trough) ? trough : null;
  out.minutesAbove = aboveMs / MS_PER_MIN;
  out.minutesBelow = belowMs / MS_PER_MIN;
  out.degreeMinutesAbove = dmAbove;
  out.degreeMinutesBelow = dmBelow;
  out.coveredMs = coveredMs;
  out.uncoveredMs = to - from - coveredMs;
  out.mktC = acc.totalWeight > 0 ? acc.valueC() : inWindow.valueC();
  return out;
}
