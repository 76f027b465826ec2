/**
 * What an edge agent publishes: telemetry batches, its birth certificate, its online/offline
 * state (also its MQTT last will), probe health, and gap records for evicted outbox ranges.
 */
import { z } from "zod";
import { celsius, epochMs, segmentId, sequence, unitKind, version } from "./common.ts";

/**
 * Quality of one reading.
 * - ok: a valid measurement.
 * - sensor_fault: the probe reported a fault sentinel (open/short circuit, e.g. 0x8000).
 * - out_of_range: decoded, but outside the probe's measurable range.
 * - comm_error: the probe did not answer or answered garbage (timeout, CRC, exception).
 * - stale: the value did not change for longer than the probe's stale limit.
 */
export const quality = z.enum(["ok", "sensor_fault", "out_of_range", "comm_error", "stale"]);
export type Quality = z.infer<typeof quality>;

/**
 * How far a reading's `observedAt` can be trusted, when the agent has reason to doubt it
 * (boxes without a real-time clock boot with a stale time until NTP syncs). Absent: the clock
 * was synchronised, or the agent has no way to tell (older agents, no time service).
 * - unsynchronised: taken while the clock was not synchronised; `observedAt` may be off by
 *   anything (days, after a boot without network).
 * - reanchored: taken while unsynchronised, then corrected by the agent from the monotonic
 *   clock to the first synchronised time of the same boot; trustworthy to within a second.
 * - stepped: taken around a jump of the wall clock that the agent could not correct.
 */
export const timeQuality = z.enum(["unsynchronised", "reanchored", "stepped"]);
export type TimeQuality = z.infer<typeof timeQuality>;

export const reading = z
  .object({
    seq: sequence,
    probeId: segmentId,
    observedAt: epochMs,
    tempC: celsius.nullable(),
    quality,
    /** True when this reading was replayed from the agent's outbox rather than sent live (Sparkplug is_historical). */
    backfill: z.boolean().default(false),
    /** Absent when the agent's clock was trusted; see `timeQuality`. */
    timeQuality: timeQuality.optional(),
  })
  .strict()
  .refine((r) => r.quality !== "ok" || r.tempC !== null, {
    message: "must be a number when quality is ok",
    path: ["tempC"],
  });
export type Reading = z.output<typeof reading>;
export type ReadingInput = z.input<typeof reading>;

/** At most this many readings per telemetry message; agents split larger batches. */
export const MAX_READINGS_PER_BATCH = 2000;

export const telemetry = z
  .object({
    v: version,
    agentId: segmentId,
    unitId: segmentId,
    /** The agent session (see birth) that sent this batch. */
    sessionId: segmentId,
    sentAt: epochMs,
    readings: z.array(reading).min(1, "must hold at least one reading").max(MAX_READINGS_PER_BATCH),
  })
  .strict();
export type Telemetry = z.output<typeof telemetry>;

export const driverKind = z.enum(["modbus-rtu", "modbus-tcp", "serial-ascii"]);

export const birth = z
  .object({
    v: version,
    agentId: segmentId,
    siteId: segmentId,
    /** Changes on every MQTT connect (Sparkplug bdSeq): lets a subscriber pair a death with its birth. */
    sessionId: segmentId,
    agentVersion: z.string().min(1).max(64),
    /** sha256 of the agent's effective configuration, hex. */
    configHash: z.string().regex(/^[0-9a-f]{64}$/, "must be a sha256 hex digest"),
    startedAt: epochMs,
    /** The sequence number the next reading will carry. */
    nextSeq: sequence,
    /** The pushed configuration version it runs (remote configuration); absent: its own file. */
    configVersion: z.number().int().min(1).optional(),
    units: z
      .array(
        z
          .object({
            unitId: segmentId,
            kind: unitKind,
            name: z.string().max(128).optional(),
            probeIds: z.array(segmentId).min(1),
          })
          .strict(),
      )
      .min(1),
    probes: z
      .array(
        z
          .object({
            probeId: segmentId,
            unitId: segmentId,
            driver: driverKind,
            intervalMs: z.number().int().min(100).max(86_400_000),
            calibrationOffsetC: z.number().min(-10).max(10).default(0),
            calibrationDueAt: epochMs.nullable().default(null),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();
export type Birth = z.output<typeof birth>;

export const agentState = z
  .object({
    v: version,
    agentId: segmentId,
    state: z.enum(["online", "offline"]),
    sessionId: segmentId,
    /** When the state began: connect time for online; for the last will, the time the session connected. */
    at: epochMs,
    /** Why the agent went offline, when it said so itself. Absent on a last will. */
    reason: z.enum(["shutdown", "lost"]).optional(),
  })
  .strict();
export type AgentState = z.output<typeof agentState>;

/** The agent's view of its own wall clock (see docs/technician/clock.md). */
export const agentClock = z
  .object({
    /** synchronised / unsynchronised per the time service; unknown when the agent cannot tell. */
    state: z.enum(["synchronised", "unsynchronised", "unknown"]),
    /** What told it: `timesyncd` (its flag file), `timedatectl` (the kernel's NTP status), `none`. */
    source: z.string().min(1).max(32),
    /** Since when the state holds (ms), when known. */
    since: epochMs.nullable(),
    /** The last jump of the wall clock against the monotonic clock, if any since start. */
    lastJump: z.object({ at: epochMs, deltaMs: z.number().int() }).strict().nullable(),
    /** Readings still waiting in the outbox whose time could not be trusted or corrected. */
    untrustedPending: z.number().int().min(0),
  })
  .strict();
export type AgentClock = z.output<typeof agentClock>;

const faultCounters = z
  .object({
    sensor_fault: z.number().int().min(0),
    out_of_range: z.number().int().min(0),
    comm_error: z.number().int().min(0),
    stale: z.number().int().min(0),
  })
  .strict();

export const probeHealth = z
  .object({
    v: version,
    agentId: segmentId,
    at: epochMs,
    probes: z
      .array(
        z
          .object({
            probeId: segmentId,
            unitId: segmentId,
            calibrationDueAt: epochMs.nullable(),
            calibrationOverdue: z.boolean(),
            /** Counts since the agent started. */
            faults: faultCounters,
            consecutiveFailures: z.number().int().min(0),
            lastOkAt: epochMs.nullable(),
          })
          .strict(),
      )
      .min(1),
    outbox: z
      .object({
        depth: z.number().int().min(0),
        oldestObservedAt: epochMs.nullable(),
        evictedTotal: z.number().int().min(0),
      })
      .strict()
      .optional(),
    clock: agentClock.optional(),
  })
  .strict();
export type ProbeHealth = z.output<typeof probeHealth>;

/** The agent dropped readings from its outbox (size bound reached). Never silent. */
export const gapRecord = z
  .object({
    v: version,
    agentId: segmentId,
    gapId: segmentId,
    reason: z.enum(["outbox_evicted"]),
    unitIds: z.array(segmentId).min(1),
    probeIds: z.array(segmentId).min(1),
    fromObservedAt: epochMs,
    toObservedAt: epochMs,
    fromSeq: sequence,
    toSeq: sequence,
    droppedCount: z.number().int().min(1),
    at: epochMs,
  })
  .strict()
  .refine((g) => g.toObservedAt >= g.fromObservedAt, {
    message: "must not be before fromObservedAt",
    path: ["toObservedAt"],
  })
  .refine((g) => g.toSeq >= g.fromSeq, { message: "must not be below fromSeq", path: ["toSeq"] });
export type GapRecord = z.output<typeof gapRecord>;
