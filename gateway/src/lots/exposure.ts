/**
 * A lot's exposure, as pure functions: which limits apply to it (its product's labelled range,
 * else the unit's range), the readings of its own time inside grouped per probe, and the
 * worst of several probes (warmest and coldest spot). No I/O: the correlation use case fetches
 * the readings and stores the result.
 */
import type { StoredReading } from "../storage/types.ts";
import type { Product } from "./model.ts";

/** The excursion engine's exposure summary (gateway/src/excursions/metrics.ts), the part lots keep. */
export interface ExposureSummary {
  peakC: number | null;
  troughC: number | null;
  minutesAbove: number;
  minutesBelow: number;
  mktC: number | null;
  coveredMs: number;
  uncoveredMs: number;
}

export interface Limits {
  high?: number;
  low?: number;
}

export type SummarizeExposure = (
  points: Array<{ t: number; tempC: number }>,
  limits: Limits,
  window: { from: number; to: number },
) => ExposureSummary;

/**
 * How far before a lot's interval readings are fetched: the reading in effect at the start of
 * the interval (sample-and-hold, the excursion engine's step rule) was taken before it.
 */
export const READING_LOOKBACK_MS = 30 * 60_000;

/** The product's labelled limits, each side falling back to the unit's range. */
export function lotLimits(
  product: Pick<Product, "highC" | "lowC"> | null | undefined,
  unit: Limits | undefined,
): Limits {
  const out: Limits = {};
  const high = product?.highC ?? unit?.high;
  const low = product?.lowC ?? unit?.low;
  if (high !== undefined && high !== null) out.high = high;
  if (low !== undefined && low !== null) out.low = low;
  return out;
}

/** Usable readings (quality ok, with a temperature) before `to`, per probe, in time order. */
export function pointsByProbe(
  readings: readonly StoredReading[],
  to: number,
): Map<string, Array<{ t: number; tempC: number }>> {
  const byProbe = new Map<string, Array<{ t: number; tempC: number }>>();
  for (const r of readings) {
    if (r.observedAt >= to) continue;
    if (r.quality !== "ok" || r.tempC === null) continue;
    const list = byProbe.get(r.probeId);
    if (list) list.push({ t: r.observedAt, tempC: r.tempC });
    else byProbe.set(r.probeId, [{ t: r.observedAt, tempC: r.tempC }]);
  }
  for (const list of byProbe.values()) list.sort((a, b) => a.t - b.t);
  return byProbe;
}

/** Nothing known of a window of this length: no readings, all of it uncovered. */
export function noExposure(windowMs: number): ExposureSummary {
  return {
    peakC: null,
    troughC: null,
    minutesAbove: 0,
    minutesBelow: 0,
    mktC: null,
    coveredMs: 0,
    uncoveredMs: Math.max(0, windowMs),
  };
}

const maxOf = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));
const minOf = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));

/** The worst of two probes' summaries of the same window, field by field. */
export function worseOf(a: ExposureSummary, b: ExposureSummary): ExposureSummary {
  return {
    peakC: maxOf(a.peakC, b.peakC),
    troughC: minOf(a.troughC, b.troughC),
    minutesAbove: Math.max(a.minutesAbove, b.minutesAbove),
    minutesBelow: Math.max(a.minutesBelow, b.minutesBelow),
    mktC: maxOf(a.mktC, b.mktC),
    coveredMs: Math.max(a.coveredMs, b.coveredMs),
    uncoveredMs: Math.min(a.uncoveredMs, b.uncoveredMs),
  };
}

/** Several probes in one unit: the lot gets the worst of them. */
export function worstOfProbes(summaries: readonly ExposureSummary[], windowMs: number): ExposureSummary {
  return summaries.reduce(worseOf, noExposure(windowMs));
}

/** The exposure of one window from a unit's readings (any order), worst probe. */
export function exposureInWindow(
  readings: readonly StoredReading[],
  window: { from: number; to: number },
  limits: Limits,
  summarize: SummarizeExposure,
): ExposureSummary {
  const { from, to } = window;
  if (!(to > from)) return noExposure(to - from);
  const summaries = [...pointsByProbe(readings, to).values()].map((points) =>
    summarize(points, limits, { from, to }),
  );
  return worstOfProbes(summaries, to - from);
}
