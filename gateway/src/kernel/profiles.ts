/**
 * Unit profiles: what "in range" means for a fridge, a freezer, a room or a transit box, the
 * alert and action tiers, how long a limit must be exceeded before an alarm (delay), how far back
 * inside the limit a reading must come before an alarm clears (hysteresis), and the recording
 * cadence the record must meet. Built-in defaults per unit kind; sites override them in config
 * (validated with `unitProfileSchema`). docs/qa/excursion-rules.md explains every field.
 *
 * Sources for the defaults:
 * - China GSP (药品经营质量管理规范, 2016) Annex 3 "温湿度自动监测" Art. 5: record at least every
 *   30 min in storage, every 5 min in transport, and at least every 2 min while a value is out
 *   of range; Art. 6: alarm when a value reaches the critical value or leaves the range.
 * - China NMPA medical-device cold-chain guideline (医疗器械冷链（运输、贮存）管理指南, 2016 No.154):
 *   continuous monitoring and alarms for 2–8 °C and frozen devices, records kept and reviewed.
 * - WHO TRS 961 (2011) Annex 9, model guidance for storage and transport of time- and
 *   temperature-sensitive pharmaceutical products: refrigerated 2–8 °C, frozen ≤ −20 °C,
 *   controlled room temperature 15–25 °C; continuous monitoring with alarms; MKT for assessing
 *   excursions.
 * - EU GDP (2013/C 343/01) §3.3.1 and §9.2: storage and transport within labelled conditions,
 *   deviations reported to the QA function and investigated.
 */
import { deepFreeze, type UnitKind, unitKind } from "@coldtrace/protocol";
import { z } from "zod";

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const optionalC = z.number().min(-273.15).max(1000).optional();
const limits = z.object({ high: optionalC, low: optionalC }).strict();
const durationMs = z
  .number()
  .int()
  .min(0)
  .max(365 * DAY);

/** The fields of a profile, without the checks across them (`unitProfileSchema` adds those). */
export const unitProfileFields = z
  .object({
    kind: unitKind,
    /** The labelled range. Outside it is an excursion, recorded from the first reading beyond. */
    range: limits,
    /** Alert tier limits (usually the range limits). An alarm after `delayMs.alert`. */
    alert: limits,
    /** Action tier limits (further out): product at risk, act at once. */
    action: limits,
    /** How long the tier limit must be exceeded before the alarm is raised (door openings, defrost). */
    delayMs: z.object({ alert: durationMs, action: durationMs }).strict(),
    /** An alarm clears (and an excursion ends) only when back inside the limit by this much. */
    hysteresisC: z.number().min(0).max(20),
    cadence: z
      .object({
        /** GSP minimum recording interval while in range (30 min storage, 5 min transport). */
        recordMs: durationMs.refine((v) => v > 0, "must be > 0"),
        /** GSP minimum recording interval while out of range (2 min). */
        outOfRangeRecordMs: durationMs.refine((v) => v > 0, "must be > 0"),
      })
      .strict(),
    /** Longest spacing between two readings that is still a continuous record (no interpolation beyond). */
    maxGapMs: durationMs.refine((v) => v > 0, "must be > 0"),
    /** Probes of one unit disagreeing by more than toleranceC for delayMs raise `probe_drift`. */
    drift: z.object({ toleranceC: z.number().min(0).max(100), delayMs: durationMs }).strict(),
    /** Rolling MKT window: 30 days for storage, 24 hours for transport. */
    rollingMktWindowMs: durationMs.refine((v) => v >= HOUR, "must be at least one hour"),
    /** An open connectivity gap not covered by backfill within this time becomes a recording gap. */
    recordingGapHorizonMs: durationMs.refine((v) => v > 0, "must be > 0"),
  })
  .strict();

/**
 * A partial override of a kind's profile, as the configuration gives it (`profiles.byKind`,
 * `profiles.byUnit`): any of the fields, each checked, no unknown ones. Top-level fields replace
 * the default's whole (`range: { high: 10 }` drops the default low limit).
 */
export const unitProfileOverride = unitProfileFields.partial().strict();
export type UnitProfileOverride = z.output<typeof unitProfileOverride>;

export const unitProfileSchema = unitProfileFields.superRefine((p, ctx) => {
  for (const side of ["high", "low"] as const) {
    const r = p.range[side];
    const a = p.alert[side];
    const x = p.action[side];
    const outward = (inner: number, outer: number) => (side === "high" ? outer >= inner : outer <= inner);
    if (r !== undefined && a !== undefined && !outward(r, a))
      ctx.addIssue({ code: "custom", path: ["alert", side], message: `must not be inside range.${side}` });
    if (a !== undefined && x !== undefined && !outward(a, x))
      ctx.addIssue({ code: "custom", path: ["action", side], message: `must not be inside alert.${side}` });
  }
  if (p.range.high !== undefined && p.range.low !== undefined && p.range.low >= p.range.high)
    ctx.addIssue({ code: "custom", path: ["range", "low"], message: "must be below range.high" });
});

export type UnitProfile = z.output<typeof unitProfileSchema>;

const storageCadence = { recordMs: 30 * MIN, outOfRangeRecordMs: 2 * MIN };
const transportCadence = { recordMs: 5 * MIN, outOfRangeRecordMs: 2 * MIN };

/**
 * Built-in profiles. Numbers are explicit so QA can quote them:
 * - fridge: range 2–8 °C (WHO TRS 961 Annex 9; NMPA device guideline); alert at the range
 *   limits after 15 min (door openings); action beyond 0 / 12 °C after 5 min (freezing damages
 *   2–8 °C products; 12 °C is a common "product at risk" threshold in stability budgets).
 * - freezer: ≤ −20 °C (WHO TRS 961); alert above −20 °C after 15 min (defrost cycles), action
 *   above −15 °C after 5 min.
 * - room: 15–25 °C (controlled room temperature, WHO TRS 961 / EU GDP); alert after 30 min,
 *   action below 8 / above 30 °C after 15 min.
 * - transit_box: 2–8 °C, transport cadence (GSP Annex 3: 5 min), shorter delays (5 min / 2 min),
 *   24 h rolling MKT.
 * Every kind: hysteresis 0.5 °C; gap after 1.5× the recording interval (grace for a late
 * poll); a connectivity gap not backfilled within 48 h becomes a recording gap.
 */
export const defaultProfiles: Readonly<Record<UnitKind, UnitProfile>> = deepFreeze({
  fridge: {
    kind: "fridge",
    range: { low: 2, high: 8 },
    alert: { low: 2, high: 8 },
    action: { low: 0, high: 12 },
    delayMs: { alert: 15 * MIN, action: 5 * MIN },
    hysteresisC: 0.5,
    cadence: storageCadence,
    maxGapMs: 45 * MIN,
    drift: { toleranceC: 2, delayMs: 30 * MIN },
    rollingMktWindowMs: 30 * DAY,
    recordingGapHorizonMs: 48 * HOUR,
  },
  freezer: {
    kind: "freezer",
    range: { high: -20 },
    alert: { high: -20 },
    action: { high: -15 },
    delayMs: { alert: 15 * MIN, action: 5 * MIN },
    hysteresisC: 0.5,
    cadence: storageCadence,
    maxGapMs: 45 * MIN,
    drift: { toleranceC: 3, delayMs: 30 * MIN },
    rollingMktWindowMs: 30 * DAY,
    recordingGapHorizonMs: 48 * HOUR,
  },
  room: {
    kind: "room",
    range: { low: 15, high: 25 },
    alert: { low: 15, high: 25 },
    action: { low: 8, high: 30 },
    delayMs: { alert: 30 * MIN, action: 15 * MIN },
    hysteresisC: 0.5,
    cadence: storageCadence,
    maxGapMs: 45 * MIN,
    drift: { toleranceC: 3, delayMs: 60 * MIN },
    rollingMktWindowMs: 30 * DAY,
    recordingGapHorizonMs: 48 * HOUR,
  },
  transit_box: {
    kind: "transit_box",
    range: { low: 2, high: 8 },
    alert: { low: 2, high: 8 },
    action: { low: 0, high: 12 },
    delayMs: { alert: 5 * MIN, action: 2 * MIN },
    hysteresisC: 0.5,
    cadence: transportCadence,
    maxGapMs: 7.5 * MIN,
    drift: { toleranceC: 2, delayMs: 10 * MIN },
    rollingMktWindowMs: DAY,
    recordingGapHorizonMs: 48 * HOUR,
  },
} satisfies Record<UnitKind, UnitProfile>);

/** A default profile with some fields replaced, validated. Throws a ZodError on bad values. */
export function profileFor(kind: UnitKind, overrides: Partial<UnitProfile> = {}): UnitProfile {
  return unitProfileSchema.parse({ ...structuredClone(defaultProfiles[kind]), ...overrides, kind });
}
