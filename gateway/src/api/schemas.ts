/**
 * JSON Schemas of the REST API: they validate requests (fastify/ajv) and become the OpenAPI
 * document. Times are UTC epoch milliseconds; ranges are half-open `[from, to)`.
 */

import { apiErrorSchema } from "./errors.ts";

/** Every 4xx and 5xx answer: the API's one error body. */
export const errors = { "4xx": apiErrorSchema, "5xx": apiErrorSchema } as const;

/** A route that takes no query parameters (unknown ones are refused). */
export const noQuery = { type: "object", additionalProperties: false, properties: {} } as const;

const id = { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$" } as const;
const ms = { type: "integer", minimum: 0, description: "UTC epoch milliseconds" } as const;
const nullableNumber = { type: ["number", "null"] } as const;

export const siteQuery = {
  type: "object",
  additionalProperties: false,
  properties: { siteId: id },
} as const;

export const probeQuery = {
  type: "object",
  additionalProperties: false,
  properties: { unitId: id },
} as const;

export const unitParams = {
  type: "object",
  required: ["unitId"],
  properties: { unitId: id },
} as const;

export const alarmParams = {
  type: "object",
  required: ["alarmId"],
  properties: { alarmId: id },
} as const;

export const excursionParams = {
  type: "object",
  required: ["excursionId"],
  properties: { excursionId: id },
} as const;

export const readingQuery = {
  type: "object",
  additionalProperties: false,
  required: ["from", "to"],
  properties: {
    from: { ...ms, description: "start, inclusive (UTC ms)" },
    to: { ...ms, description: "end, exclusive (UTC ms)" },
    probeId: id,
    bucketMs: {
      type: "integer",
      minimum: 1000,
      description: "downsample into buckets of this size (min/max/mean/count per probe)",
    },
    limit: { type: "integer", minimum: 1, maximum: 100_000 },
  },
} as const;

const timeFilter = { from: ms, to: ms } as const;

export const alarmQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    siteId: id,
    unitId: id,
    state: { type: "string", enum: ["raised", "acknowledged", "cleared"] },
    ...timeFilter,
  },
} as const;

export const excursionQuery = {
  type: "object",
  additionalProperties: false,
  properties: { siteId: id, unitId: id, open: { type: "boolean" }, ...timeFilter },
} as const;

export const gapQuery = {
  type: "object",
  additionalProperties: false,
  properties: { siteId: id, agentId: id, unitId: id, ...timeFilter },
} as const;

export const ackBody = {
  type: "object",
  additionalProperties: false,
  required: ["by", "comment", "correctiveAction"],
  properties: {
    by: { type: "string", minLength: 1, maxLength: 128 },
    comment: { type: "string", maxLength: 2000 },
    correctiveAction: { type: "string", maxLength: 2000 },
  },
} as const;

export const unit = {
  type: "object",
  properties: {
    unitId: { type: "string" },
    siteId: { type: "string" },
    kind: { type: "string", enum: ["fridge", "freezer", "room", "transit_box"] },
    name: { type: "string" },
    profileId: { type: "string" },
  },
} as const;
export const unitList = { type: "array", items: unit } as const;

export const probe = {
  type: "object",
  properties: {
    probeId: { type: "string" },
    unitId: { type: "string" },
    siteId: { type: "string" },
    agentId: { type: "string" },
    driver: { type: "string" },
    intervalMs: { type: "integer" },
    calibrationOffsetC: { type: "number" },
    calibrationDueAt: { type: ["integer", "null"] },
  },
} as const;
export const probeList = { type: "array", items: probe } as const;

export const agentList = {
  type: "array",
  items: {
    type: "object",
    properties: {
      agentId: { type: "string" },
      siteId: { type: "string" },
      sessionId: { type: "string" },
      state: { type: "string", enum: ["online", "offline"] },
      lastSeenAt: { type: "integer" },
      configHash: { type: ["string", "null"] },
    },
  },
} as const;

export const reading = {
  type: "object",
  properties: {
    agentId: { type: "string" },
    seq: { type: "integer" },
    siteId: { type: "string" },
    unitId: { type: "string" },
    probeId: { type: "string" },
    observedAt: { type: "integer" },
    receivedAt: { type: "integer" },
    tempC: nullableNumber,
    quality: { type: "string" },
    backfill: { type: "boolean" },
  },
} as const;
export const readingList = { type: "array", items: reading } as const;

export const readingsResponse = {
  type: "object",
  properties: {
    unitId: { type: "string" },
    from: { type: "integer" },
    to: { type: "integer" },
    bucketMs: { type: "integer" },
    readings: readingList,
    buckets: {
      type: "array",
      items: {
        type: "object",
        properties: {
          start: { type: "integer" },
          probeId: { type: "string" },
          min: { type: "number" },
          max: { type: "number" },
          mean: { type: "number" },
          count: { type: "integer" },
        },
      },
    },
  },
} as const;

export const alarm = {
  type: "object",
  additionalProperties: true,
  properties: {
    alarmId: { type: "string" },
    siteId: { type: "string" },
    unitId: { type: "string" },
    kind: { type: "string" },
    state: { type: "string", enum: ["raised", "acknowledged", "cleared"] },
    tier: { type: "string" },
    side: { type: "string" },
    raisedAt: { type: "integer" },
    clearedAt: { type: "integer" },
    message: { type: "string" },
    updatedAt: { type: "integer" },
    acknowledged: {
      type: "object",
      properties: {
        by: { type: "string" },
        comment: { type: "string" },
        correctiveAction: { type: "string" },
      },
    },
  },
} as const;
export const alarmList = { type: "array", items: alarm } as const;

export const excursion = {
  type: "object",
  additionalProperties: true,
  properties: {
    excursionId: { type: "string" },
    siteId: { type: "string" },
    unitId: { type: "string" },
    unitKind: { type: "string" },
    side: { type: "string" },
    tier: { type: "string" },
    startedAt: { type: "integer" },
    endedAt: { type: ["integer", "null"] },
    durationMs: { type: "integer" },
    peakC: { type: "number" },
    troughC: { type: "number" },
    degreeMinutes: { type: "number" },
    mktC: { type: "number" },
    updatedAt: { type: "integer" },
  },
} as const;
export const excursionList = { type: "array", items: excursion } as const;

export const gapList = {
  type: "array",
  items: {
    type: "object",
    additionalProperties: true,
    properties: {
      gapId: { type: "string" },
      agentId: { type: "string" },
      siteId: { type: "string" },
      reason: { type: "string" },
      fromObservedAt: { type: "integer" },
      toObservedAt: { type: "integer" },
    },
  },
} as const;
