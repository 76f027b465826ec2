/**
 * Encoding and decoding of payloads: UTF-8 JSON validated by the zod schemas.
 *
 *   bytes ─▶ UTF-8 (fatal) ─▶ JSON.parse ─▶ schema for the topic's kind ─▶ topic/payload agreement ─▶ Message
 *
 * Anything wrong at any step is a ColdtraceError CT_WIRE_INVALID (or CT_TOPIC_INVALID for the
 * topic) whose message names the topic, the field path and what was found; nothing else is
 * ever thrown for bad input.
 */
import type { z } from "zod";
import { ColdtraceError, type ErrorCode } from "./errors.ts";
import { agentState, birth, gapRecord, probeHealth, telemetry } from "./schemas/agent.ts";
import { configDesired, configReported } from "./schemas/agent-remote.ts";
import { alarmEvent, eligibility, excursionEvent, gatewayState, lotEvent } from "./schemas/gateway.ts";
import { movement } from "./schemas/movement.ts";
import { parseTopic, type Topic, type TopicKind } from "./topics.ts";

/** Payloads above this size are rejected before parsing. */
export const MAX_PAYLOAD_BYTES = 1_048_576;

export const schemaFor = {
  telemetry,
  birth,
  agentState,
  probeHealth,
  gap: gapRecord,
  configDesired,
  configReported,
  movement,
  alarm: alarmEvent,
  excursion: excursionEvent,
  lot: lotEvent,
  eligibility,
  gatewayState,
} as const satisfies Record<TopicKind, z.ZodType>;

type Payloads = { [K in TopicKind]: z.output<(typeof schemaFor)[K]> };
type PayloadInputs = { [K in TopicKind]: z.input<(typeof schemaFor)[K]> };

/**
 * The parsed topic of one kind. Some Topic variants share a shape across several kinds
 * (`kind: "birth" | "agentState" | …`), which `Extract<Topic, { kind: K }>` would miss.
 */
export type TopicOf<K extends TopicKind> = Topic extends infer T
  ? T extends { kind: infer TK }
    ? K extends TK
      ? Omit<T, "kind"> & { kind: K }
      : never
    : never
  : never;

/** A decoded message: the parsed topic and its validated payload, discriminated by `kind`. */
export type Message = {
  [K in TopicKind]: { kind: K; topic: TopicOf<K>; payload: Payloads[K] };
}[TopicKind];

export interface WireIssue {
  path: string;
  message: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "object") return "an object";
  return String(value);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur = root;
  for (const key of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

function wireError(
  where: string,
  issues: WireIssue[],
  context: Record<string, unknown> = {},
): ColdtraceError {
  return new ColdtraceError("CT_WIRE_INVALID", `${where}: ${issuesText(issues)}`, {
    where,
    issues,
    ...context,
  });
}

/**
 * The one way issues become text: `path: message; path: message`. An issue without a path is
 * the message alone, or `root` first when given (`(root): …` in configuration errors).
 */
export function issuesText(issues: readonly WireIssue[], opts: { root?: string } = {}): string {
  return issues
    .map((i) => (i.path ? `${i.path}: ${i.message}` : opts.root ? `${opts.root}: ${i.message}` : i.message))
    .join("; ");
}

/**
 * A failed zod parse as a ColdtraceError of `code`: `where: path: message; …` naming every
 * issue (describeIssues), the issues in `context.issues` (the REST error body lists them).
 */
export function invalidInput(
  code: ErrorCode,
  where: string,
  error: z.ZodError,
  input: unknown,
  context: Record<string, unknown> = {},
): ColdtraceError {
  const issues = describeIssues(error, input);
  return new ColdtraceError(code, `${where}: ${issuesText(issues)}`, { where, issues, ...context });
}

/** Parse `input` with `schema`, or throw `invalidInput(code, where, …)`. */
export function parseOr<S extends z.ZodType>(
  code: ErrorCode,
  schema: S,
  where: string,
  input: unknown,
): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw invalidInput(code, where, r.error, input);
  return r.data;
}

/** `readings[4].tempC`: the path notation used in every error message. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** Turn zod issues into `path: message, got X` lines, all of them. */
export function describeIssues(error: z.ZodError, input: unknown): WireIssue[] {
  return error.issues.map((issue) => {
    const path = formatPath(issue.path);
    const got = valueAt(input, issue.path);
    if (issue.code === "invalid_type") {
      return {
        path,
        message: `expected ${issue.expected}, got ${got === undefined ? "nothing" : describe(got)}`,
      };
    }
    const found =
      issue.code === "unrecognized_keys" || issue.code === "custom" || got === undefined
        ? ""
        : `, got ${describe(got)}`;
    return { path, message: `${issue.message}${found}` };
  });
}

function parseJson(where: string, payload: Uint8Array | string): unknown {
  const size = typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > MAX_PAYLOAD_BYTES) {
    throw wireError(where, [
      { path: "", message: `payload is ${size} bytes, more than ${MAX_PAYLOAD_BYTES}` },
    ]);
  }
  let text: string;
  if (typeof payload === "string") {
    text = payload;
  } else {
    try {
      text = utf8.decode(payload);
    } catch {
      throw wireError(where, [{ path: "", message: "payload is not valid UTF-8" }]);
    }
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw wireError(where, [{ path: "", message: `payload is not JSON (${(err as Error).message})` }]);
  }
}

/** Validate a value (already parsed) against the schema of a topic kind. */
export function validatePayload<K extends TopicKind>(
  kind: K,
  value: unknown,
  where: string = kind,
): Payloads[K] {
  const result = schemaFor[kind].safeParse(value);
  if (!result.success) throw wireError(where, describeIssues(result.error, value), { kind });
  return result.data as Payloads[K];
}

/** Decode bytes for a known kind, without a topic (e.g. a REST body or a file). */
export function decodePayload<K extends TopicKind>(
  kind: K,
  payload: Uint8Array | string,
  where: string = kind,
): Payloads[K] {
  return validatePayload(kind, parseJson(where, payload), where);
}

function agreement(topic: string, t: Topic, payload: Record<string, unknown>): WireIssue[] {
  const issues: WireIssue[] = [];
  for (const key of ["siteId", "agentId", "unitId", "lotId", "gatewayId"] as const) {
    const inTopic = (t as Record<string, unknown>)[key];
    if (inTopic !== undefined && key in payload && payload[key] !== inTopic) {
      issues.push({
        path: key,
        message: `does not match the topic (${JSON.stringify(inTopic)}), got ${describe(payload[key])}`,
      });
    }
  }
  void topic;
  return issues;
}

/** Decode an MQTT message: topic and payload are both checked, and must agree on ids. */
export function decodeMessage(topic: string, payload: Uint8Array | string): Message {
  const t = parseTopic(topic);
  const data = validatePayload(t.kind, parseJson(topic, payload), topic) as Record<string, unknown>;
  const mismatch = agreement(topic, t, data);
  if (mismatch.length > 0) throw wireError(topic, mismatch, { kind: t.kind });
  return { kind: t.kind, topic: t, payload: data } as Message;
}

/** Validate and serialise a payload for a kind. Throws CT_WIRE_INVALID instead of sending bad data. */
export function encodePayload<K extends TopicKind>(kind: K, value: PayloadInputs[K]): Buffer {
  return Buffer.from(JSON.stringify(validatePayload(kind, value, `encode ${kind}`)), "utf8");
}
