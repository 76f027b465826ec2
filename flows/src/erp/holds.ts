/**
 * Lot decisions out to the ERP: which gateway events become a call to the ERP's hold or unhold
 * API, and what the call says. Configured by a mapping file (COLDTRACE_ERP_HOLDS_MAPPING):
 *
 *   hold:   { url: https://erp.example.cn/api/stock/hold,   method: POST }
 *   unhold: { url: https://erp.example.cn/api/stock/unhold, method: POST }
 *   events: { lot.quarantined: hold, lot.rejected: hold, lot.released: unhold, … }
 *   eligibility: true        # expiry / used-up stability budget → hold; eligible again → unhold
 *   fields: { lotId: batchNo, siteId: warehouseCode, … }   # the ERP's names for our fields
 *
 * Every call carries the gateway's eventId (body and `Idempotency-Key` header): the ERP can
 * dedupe it, and the bridge itself sends each eventId once (../store.ts).
 *
 * Eligibility states are retained and carry no eventId; they act only when eligibility changed
 * while the lot's status did not (a lot event already covers quarantine, release, reject), and
 * their id is made from the state itself, so a redelivered state is the same call.
 */
import {
  ColdtraceError,
  describeIssues,
  type Eligibility,
  eligibility as eligibilitySchema,
  type LotEvent,
  lotEvent,
  parseTopic,
} from "@coldtrace/protocol";
import { z } from "zod";
import { parseConfig, readConfigFile } from "../config-file.ts";

const action = z.enum(["hold", "unhold", "none"]);
const endpoint = z
  .object({ url: z.url({ protocol: /^https?$/ }), method: z.enum(["POST", "PUT", "PATCH"]).default("POST") })
  .strict();
const fieldNames = [
  "eventId",
  "action",
  "siteId",
  "lotId",
  "sku",
  "quantity",
  "reason",
  "status",
  "occurredAt",
] as const;

export const holdsMapping = z
  .object({
    hold: endpoint,
    unhold: endpoint,
    events: z
      .object({
        "lot.quarantined": action.default("hold"),
        "lot.flagged_for_review": action.default("none"),
        "lot.released": action.default("unhold"),
        "lot.rejected": action.default("hold"),
        "lot.returned_to_supplier": action.default("none"),
      })
      .strict()
      .default({
        "lot.quarantined": "hold",
        "lot.flagged_for_review": "none",
        "lot.released": "unhold",
        "lot.rejected": "hold",
        "lot.returned_to_supplier": "none",
      }),
    eligibility: z.boolean().default(true),
    /** The ERP's name for each field of the call body (default: ours). */
    fields: z.partialRecord(z.enum(fieldNames), z.string().min(1).max(64)).default({}),
  })
  .strict();
export type HoldsMapping = z.output<typeof holdsMapping>;

export function parseHoldsMapping(input: unknown, source = "ERP holds mapping"): HoldsMapping {
  return parseConfig(holdsMapping, input, source);
}

export function loadHoldsMapping(file: string): HoldsMapping {
  return parseHoldsMapping(readConfigFile(file, "ERP holds mapping"), file);
}

/** One call to make, keyed by the event it comes from. */
export interface HoldCall {
  eventId: string;
  action: "hold" | "unhold";
  siteId: string;
  lotId: string;
  sku: string;
  quantity: number;
  reason: string;
  status: string;
  occurredAt: number;
}

/** The last eligibility seen per lot (persisted by the node). */
export interface SeenEligibility {
  eligible: boolean;
  status: string;
}

export type HoldInput =
  | { type: "lot"; event: LotEvent }
  | { type: "eligibility"; state: Eligibility }
  | { type: "ignored"; why: string };

export function readHoldInput(topic: string, payload: Buffer | string): HoldInput {
  const t = parseTopic(topic);
  const text = typeof payload === "string" ? payload : payload.toString("utf8");
  if (text === "") return { type: "ignored", why: "empty payload (a retained state being cleared)" };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ColdtraceError("CT_WIRE_INVALID", `${topic}: payload is not JSON`, { topic });
  }
  const bad = (err: z.ZodError) => {
    const issues = describeIssues(err, body);
    return new ColdtraceError(
      "CT_WIRE_INVALID",
      `${topic}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      {
        topic,
        issues,
      },
    );
  };
  if (t.kind === "lot") {
    const r = lotEvent.safeParse(body);
    if (!r.success) throw bad(r.error);
    return { type: "lot", event: r.data };
  }
  if (t.kind === "eligibility") {
    const r = eligibilitySchema.safeParse(body);
    if (!r.success) throw bad(r.error);
    return { type: "eligibility", state: r.data };
  }
  return { type: "ignored", why: `not a lot topic (${t.kind})` };
}

export function callForLotEvent(m: HoldsMapping, e: LotEvent): HoldCall | undefined {
  const a = m.events[e.type];
  if (a === "none") return undefined;
  return {
    eventId: e.eventId,
    action: a,
    siteId: e.siteId,
    lotId: e.lotId,
    sku: e.sku,
    quantity: e.quantity,
    reason: e.reason,
    status: e.type.slice(4),
    occurredAt: e.at,
  };
}

/** Statuses under which eligibility alone decides (the others come with their lot event). */
const FREE = new Set(["available", "released"]);

export function callForEligibility(
  m: HoldsMapping,
  s: Eligibility,
  prev: SeenEligibility | undefined,
): HoldCall | undefined {
  if (!m.eligibility || !FREE.has(s.status)) return undefined;
  const changed = prev === undefined ? !s.eligible : prev.status === s.status && prev.eligible !== s.eligible;
  if (!changed) return undefined;
  return {
    eventId: `eligibility-${s.siteId}-${encodeURIComponent(s.lotId)}-${s.lotSeq}-${s.eligible ? "eligible" : "ineligible"}-${s.updatedAt}`,
    action: s.eligible ? "unhold" : "hold",
    siteId: s.siteId,
    lotId: s.lotId,
    sku: s.sku,
    quantity: s.transferableQuantity,
    reason: s.eligible ? "eligible again" : s.reasons.join("; ") || "not eligible",
    status: s.status,
    occurredAt: s.updatedAt,
  };
}

/** The ERP's request body for a call, with the mapping's field names. */
export function requestBody(m: HoldsMapping, c: HoldCall): Record<string, unknown> {
  const ours: Record<(typeof fieldNames)[number], unknown> = {
    eventId: c.eventId,
    action: c.action,
    siteId: c.siteId,
    lotId: c.lotId,
    sku: c.sku,
    quantity: c.quantity,
    reason: c.reason,
    status: c.status,
    occurredAt: new Date(c.occurredAt).toISOString(),
  };
  return Object.fromEntries(fieldNames.map((f) => [m.fields[f] ?? f, ours[f]]));
}
