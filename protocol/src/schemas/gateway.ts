/**
 * What the gateway publishes: its own retained state, and events about alarms, excursions and
 * lots, plus a retained eligibility state per lot and site for the transfer planner.
 * Every event has a stable `eventId`: a resend after a restart carries the same id.
 */
import { z } from "zod";
import { celsius, epochMs, eventId, lotId, segmentId, unitKind, version } from "./common.ts";

export const gatewayState = z
  .object({
    v: version,
    gatewayId: segmentId,
    state: z.enum(["online", "offline"]),
    at: epochMs,
  })
  .strict();
export type GatewayState = z.output<typeof gatewayState>;

const eventBase = {
  v: version,
  eventId,
  siteId: segmentId,
  /** When the fact happened (event time), not when it was published. */
  at: epochMs,
};

export const limitTier = z.enum(["alert", "action"]);
export const limitSide = z.enum(["high", "low"]);

export const alarmKind = z.enum([
  "temperature",
  "probe_drift",
  "probe_fault",
  "calibration_overdue",
  "connectivity_gap",
  "recording_gap",
  "agent_offline",
]);

export const alarmEvent = z
  .object({
    ...eventBase,
    type: z.enum(["alarm.raised", "alarm.acknowledged", "alarm.cleared"]),
    alarmId: segmentId,
    kind: alarmKind,
    unitId: segmentId,
    probeId: segmentId.optional(),
    tier: limitTier.optional(),
    side: limitSide.optional(),
    /** `temperature`: the worst probe's temperature when the alarm was raised, °C. */
    valueC: celsius.optional(),
    /** `temperature`: the limit crossed (the tier's limit on that side), °C. */
    limitC: celsius.optional(),
    raisedAt: epochMs,
    message: z.string().max(500),
    acknowledged: z
      .object({
        by: z.string().min(1).max(128),
        comment: z.string().max(2000),
        correctiveAction: z.string().max(2000),
      })
      .strict()
      .optional(),
    clearedAt: epochMs.optional(),
  })
  .strict();
export type AlarmEvent = z.output<typeof alarmEvent>;

export const excursionEvent = z
  .object({
    ...eventBase,
    type: z.enum(["excursion.opened", "excursion.updated", "excursion.closed"]),
    excursionId: segmentId,
    unitId: segmentId,
    unitKind,
    side: limitSide,
    /** The highest tier crossed so far. */
    tier: limitTier,
    startedAt: epochMs,
    endedAt: epochMs.nullable(),
    durationMs: z.number().int().min(0),
    peakC: celsius,
    troughC: celsius,
    /** Integral of (temperature − limit) over time beyond the range limit, in °C·min. */
    degreeMinutes: z.number().min(0),
    minutesBeyond: z.object({ alert: z.number().min(0), action: z.number().min(0) }).strict(),
    /** Mean kinetic temperature over the excursion, USP <1079.2>, ΔH/R = 10,000 K. */
    mktC: celsius,
  })
  .strict();
export type ExcursionEvent = z.output<typeof excursionEvent>;

export const lotStatus = z.enum(["available", "quarantined", "released", "rejected", "returned_to_supplier"]);
export type LotStatus = z.infer<typeof lotStatus>;

export const lotEvent = z
  .object({
    ...eventBase,
    type: z.enum([
      "lot.quarantined",
      "lot.released",
      "lot.rejected",
      "lot.returned_to_supplier",
      "lot.flagged_for_review",
    ]),
    lotId,
    sku: z.string().min(1).max(64),
    unitId: segmentId.optional(),
    quantity: z.number().int().min(0),
    reason: z.string().max(500),
    excursionIds: z.array(segmentId).default([]),
    by: z.string().max(128).optional(),
    /** Per-lot order: events of one lot are numbered 1, 2, 3 … by the gateway. */
    lotSeq: z.number().int().min(1),
  })
  .strict();
export type LotEvent = z.output<typeof lotEvent>;

/** Retained, one per lot and site: what a planner that connects late sees at once. */
export const eligibility = z
  .object({
    v: version,
    siteId: segmentId,
    lotId,
    sku: z.string().min(1).max(64),
    status: lotStatus,
    eligible: z.boolean(),
    expiresAt: epochMs.nullable(),
    transferableQuantity: z.number().int().min(0),
    remainingBudgetMinutes: z
      .object({ high: z.number().min(0).nullable(), low: z.number().min(0).nullable() })
      .strict(),
    reasons: z.array(z.string().max(500)),
    updatedAt: epochMs,
    /** The lotSeq of the lot event this state follows; lets a consumer drop stale states. */
    lotSeq: z.number().int().min(0),
  })
  .strict();
export type Eligibility = z.output<typeof eligibility>;
