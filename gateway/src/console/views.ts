/**
 * What the console's API answers, as zod schemas: the TypeScript types come from them, and
 * their JSON Schema (OpenAPI 3.0 flavour) goes to fastify, which serialises responses with it
 * and lists them in /openapi.json. One source for the three.
 *
 * Times are UTC epoch milliseconds on the wire, like the rest of the API; the console turns
 * them into the site's local time. Every site carries its `timeZone` for that.
 */
import { z } from "zod";

const ms = z.number().int().describe("UTC epoch milliseconds");
const nullableMs = ms.nullable();

export const unitStates = ["action", "alert", "offline", "gap", "ok"] as const;
export type UnitState = (typeof unitStates)[number];

/** Why a unit is in its state, as a code the console translates. */
export const stateReasons = [
  "temperature_action",
  "temperature_alert",
  "excursion_action",
  "excursion_alert",
  "probe_drift",
  "agent_offline",
  "no_agent",
  "no_readings",
  "readings_late",
  "gap_alarm",
  "in_range",
] as const;
export type StateReason = (typeof stateReasons)[number];

export const siteView = z.object({
  siteId: z.string(),
  name: z.string(),
  timeZone: z.string().describe("IANA time zone the site's times are shown in"),
});
export type SiteView = z.infer<typeof siteView>;

export const calibrationStates = ["ok", "due_soon", "overdue", "unknown"] as const;

export const probeView = z.object({
  probeId: z.string(),
  tempC: z.number().nullable(),
  quality: z.string().nullable().describe("quality of the latest reading; null: no reading yet"),
  observedAt: nullableMs,
  receivedAt: nullableMs,
  fault: z.boolean().describe("latest reading not ok, or an open probe_fault alarm"),
  calibrationDueAt: nullableMs,
  calibration: z.enum(calibrationStates),
});
export type ProbeView = z.infer<typeof probeView>;

export const limitsView = z.object({
  low: z.number().nullable(),
  high: z.number().nullable(),
});

export const agentView = z.object({
  agentId: z.string(),
  state: z.enum(["online", "offline"]),
  /** The agent's last birth/state message, or its newest reading's arrival if later. */
  lastSeenAt: ms,
});

export const excursionBrief = z.object({
  excursionId: z.string(),
  side: z.string(),
  tier: z.string(),
  startedAt: ms,
  peakC: z.number(),
  troughC: z.number(),
});

export const unitOverview = z.object({
  unitId: z.string(),
  siteId: z.string(),
  name: z.string(),
  kind: z.string(),
  state: z.enum(unitStates),
  reason: z.enum(stateReasons),
  range: limitsView,
  probes: z.array(probeView),
  agent: agentView.nullable(),
  openAlarms: z.number().int(),
  unacknowledgedAlarms: z.number().int(),
  openExcursion: excursionBrief.nullable(),
  /** Newest observedAt over the unit's probes. */
  lastReadingAt: nullableMs,
});
export type UnitOverview = z.infer<typeof unitOverview>;

export const fleetView = z.object({
  generatedAt: ms,
  sites: z.array(siteView),
  /** Worst first: action, alert, offline, gap, ok; then most unacknowledged alarms, site, name. */
  units: z.array(unitOverview),
});
export type FleetView = z.infer<typeof fleetView>;

export const consoleSettings = z.object({
  defaultLanguage: z.enum(["zh-CN", "en"]),
  defaultTimeZone: z.string(),
  heartbeatMs: z.number().int(),
  sites: z.array(siteView),
  /** Who the request's token belongs to (stage 1 sign-in is an API token). */
  signedInAs: z.string(),
});

const alarmView = z
  .object({
    alarmId: z.string(),
    siteId: z.string(),
    unitId: z.string(),
    probeId: z.string().optional(),
    kind: z.string(),
    state: z.enum(["raised", "acknowledged", "cleared"]),
    tier: z.string().optional(),
    side: z.string().optional(),
    raisedAt: ms,
    clearedAt: ms.optional(),
    message: z.string(),
    updatedAt: ms,
    acknowledged: z.object({ by: z.string(), comment: z.string(), correctiveAction: z.string() }).optional(),
  })
  .describe("an alarm record (GET /api/v1/alarms/{alarmId})");

const excursionView = z.object({
  excursionId: z.string(),
  siteId: z.string(),
  unitId: z.string(),
  unitKind: z.string(),
  side: z.string(),
  tier: z.string(),
  startedAt: ms,
  endedAt: nullableMs,
  durationMs: z.number().int(),
  peakC: z.number(),
  troughC: z.number(),
  degreeMinutes: z.number(),
  minutesBeyond: z.object({ alert: z.number(), action: z.number() }),
  mktC: z.number(),
  updatedAt: ms,
});

export const inboxView = z.object({
  generatedAt: ms,
  sites: z.array(siteView),
  units: z.array(z.object({ unitId: z.string(), siteId: z.string(), name: z.string() })),
  /** Open (raised or acknowledged) alarms, and alarms cleared within `hours`; newest first. */
  alarms: z.array(alarmView),
  /** Open excursions, and those ended within `hours`; newest first. */
  excursions: z.array(excursionView),
});
export type InboxView = z.infer<typeof inboxView>;

export const profileView = z.object({
  /** Where the profile comes from: the kind's built-in defaults, or the configuration. */
  source: z.enum(["defaults", "byKind", "byUnit"]),
  range: limitsView,
  alert: limitsView,
  action: limitsView,
  delayMs: z.object({ alert: z.number().int(), action: z.number().int() }),
  hysteresisC: z.number(),
  maxGapMs: z.number().int(),
  recordMs: z.number().int(),
});
export type ProfileView = z.infer<typeof profileView>;

export const unitDetailView = z.object({
  generatedAt: ms,
  site: siteView,
  unit: unitOverview,
  /** null when the unit's profile is invalid (the engine refused it; see the gateway log). */
  profile: profileView.nullable(),
  probes: z.array(
    z.object({
      probeId: z.string(),
      driver: z.string().nullable(),
      intervalMs: z.number().int().nullable(),
      calibrationOffsetC: z.number().nullable(),
    }),
  ),
  /** What is inside the unit now (the lots module; empty when it is off). */
  lots: z.array(z.object({ lotId: z.string(), siteId: z.string(), quantity: z.number().int() })),
});
export type UnitDetailView = z.infer<typeof unitDetailView>;

const eligibilityView = z.object({
  siteId: z.string(),
  lotId: z.string(),
  sku: z.string(),
  status: z.string(),
  eligible: z.boolean(),
  expiresAt: nullableMs,
  transferableQuantity: z.number().int(),
  remainingBudgetMinutes: z.object({ high: z.number().nullable(), low: z.number().nullable() }),
  reasons: z.array(z.string()),
  updatedAt: ms,
  lotSeq: z.number().int(),
});

export const lotView = z.object({
  generatedAt: ms,
  lotId: z.string(),
  sku: z.string().nullable(),
  expiresAt: nullableMs,
  sites: z.array(siteView),
  eligibility: z.array(eligibilityView),
  holds: z.array(
    z.object({
      holdId: z.string(),
      siteId: z.string(),
      unitId: z.string(),
      causeId: z.string(),
      quantity: z.number().int(),
      status: z.string(),
      reason: z.string(),
      createdAt: ms,
      decidedBy: z.string().nullable(),
      decidedReason: z.string().nullable(),
      decidedAt: nullableMs,
    }),
  ),
  exposures: z.array(
    z.object({
      causeId: z.string(),
      cause: z.enum(["excursion", "gap"]),
      unitId: z.string(),
      siteId: z.string(),
      from: ms,
      to: ms,
      quantity: z.number().int(),
      side: z.string().nullable(),
      tier: z.string().nullable(),
      minutesAbove: z.number(),
      minutesBelow: z.number(),
      peakC: z.number().nullable(),
      troughC: z.number().nullable(),
    }),
  ),
  /** Where the lot has been: stays in units, oldest first (`to` null while still inside). */
  stays: z.array(
    z.object({
      unitId: z.string(),
      siteId: z.string(),
      quantity: z.number().int(),
      from: ms,
      to: nullableMs,
    }),
  ),
});
export type LotView = z.infer<typeof lotView>;

export const lotListView = z.object({
  generatedAt: ms,
  lots: z.array(eligibilityView),
});

/** JSON Schema for a fastify route (response serialisation and /openapi.json). */
export function routeSchema(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { target: "openapi-3.0", io: "output", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
}
