/**
 * ERP documents in, contract movements out. The bridge's inbound API takes the documents a
 * store ERP posts — goods receipts, store-to-store transfers (dispatch and receipt), dispensing
 * and returns — one line per lot, and turns each line into one `movement`
 * (docs/protocol.md#stock-movements), idempotent by `erp-{documentId}-{line}`:
 *
 *   goods_receipt      line.location ◀── supplier            receive
 *   transfer_dispatch  line.location ──▶ line.transitBoxId    load     (at the sending store)
 *   transfer_receipt   line.transitBoxId ──▶ line.location    unload   (at the receiving store)
 *   dispensing         line.location ──▶ patient / customer   dispense
 *   return             customer ──▶ line.location             return
 *
 * `location` and `transitBoxId` are Coldtrace unit ids (keep them in the ERP's location master).
 * Every problem names its field: `lines[1].lotNo: expected string, got nothing`.
 */
import {
  describeIssues,
  lotId,
  type Movement,
  movement,
  segmentId,
  wallClockToEpoch,
} from "@coldtrace/protocol";
import { z } from "zod";

export const documentTypes = [
  "goods_receipt",
  "transfer_dispatch",
  "transfer_receipt",
  "dispensing",
  "return",
] as const;
export type DocumentType = (typeof documentTypes)[number];

const documentLine = z
  .object({
    line: z.number().int().min(1).max(9999),
    sku: z.string().min(1).max(64),
    /** Informational (the ERP's product name); not part of the movement. */
    productName: z.string().max(200).optional(),
    lotNo: lotId,
    quantity: z.number().int("must be a whole number of units").min(1, "must be at least 1"),
    location: segmentId,
    transitBoxId: segmentId.optional(),
  })
  .strict();

export const erpDocument = z
  .object({
    documentId: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[A-Za-z0-9._:-]+$/, "must be 1–100 of A–Z a–z 0–9 . _ : -"),
    type: z.enum(documentTypes),
    storeId: segmentId,
    /** ISO 8601 with a zone, epoch ms, or a local time of the bridge's time zone. */
    postedAt: z.union([z.number().int().min(946_684_800_000), z.string().min(1)]),
    operator: z.string().max(64).optional(),
    lines: z.array(documentLine).min(1).max(500),
  })
  .strict()
  .superRefine((d, ctx) => {
    const seen = new Set<number>();
    d.lines.forEach((l, i) => {
      if (seen.has(l.line))
        ctx.addIssue({ code: "custom", path: ["lines", i, "line"], message: `repeats line ${l.line}` });
      seen.add(l.line);
      const box = d.type === "transfer_dispatch" || d.type === "transfer_receipt";
      if (box && l.transitBoxId === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["lines", i, "transitBoxId"],
          message: `is required for a ${d.type} (the monitored box the stock travels in)`,
        });
      }
      if (!box && l.transitBoxId !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["lines", i, "transitBoxId"],
          message: `must be absent for a ${d.type}`,
        });
      }
    });
  });
export type ErpDocument = z.output<typeof erpDocument>;

export interface DocumentIssue {
  path: string;
  message: string;
}

export type DocumentCheck =
  | { ok: true; document: ErpDocument; movements: Movement[] }
  | { ok: false; issues: DocumentIssue[] };

const ZONED = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;
const LOCAL = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})[T ](\d{1,2}):(\d{2})(?::(\d{2}))?$/;

function fromLocal(p: number[], timeZone: string): number {
  return wallClockToEpoch(Date.UTC(p[0]!, p[1]! - 1, p[2]!, p[3]!, p[4]!, p[5] ?? 0), timeZone);
}

function postedAt(value: number | string, timeZone: string): number | string {
  if (typeof value === "number") return value;
  if (ZONED.test(value)) {
    const t = Date.parse(value.replace(" ", "T"));
    return Number.isNaN(t) ? "is not a valid time" : t;
  }
  const m = LOCAL.exec(value);
  if (m)
    return fromLocal(
      m
        .slice(1)
        .filter((x) => x !== undefined)
        .map(Number),
      timeZone,
    );
  return `expected ISO 8601 (2026-11-20T08:00:00+08:00), a local time (2026-11-20 08:00:00, read in ${timeZone}) or epoch ms, got ${JSON.stringify(value)}`;
}

const KIND: Record<DocumentType, Movement["kind"]> = {
  goods_receipt: "receive",
  transfer_dispatch: "load",
  transfer_receipt: "unload",
  dispensing: "dispense",
  return: "return",
};

/** Check a document and derive its movements. Never throws on bad input. */
export function checkDocument(input: unknown, timeZone: string): DocumentCheck {
  const r = erpDocument.safeParse(input);
  if (!r.success) return { ok: false, issues: describeIssues(r.error, input) };
  const d = r.data;
  const at = postedAt(d.postedAt, timeZone);
  if (typeof at === "string") return { ok: false, issues: [{ path: "postedAt", message: at }] };
  const movements: Movement[] = [];
  const issues: DocumentIssue[] = [];
  d.lines.forEach((l, i) => {
    const kind = KIND[d.type];
    const ends =
      d.type === "goods_receipt" || d.type === "return"
        ? { toUnitId: l.location }
        : d.type === "dispensing"
          ? { fromUnitId: l.location }
          : d.type === "transfer_dispatch"
            ? { fromUnitId: l.location, toUnitId: l.transitBoxId! }
            : { fromUnitId: l.transitBoxId!, toUnitId: l.location };
    const m = {
      v: 1 as const,
      movementId: `erp-${d.documentId}-${l.line}`,
      kind,
      siteId: d.storeId,
      occurredAt: at,
      lotId: l.lotNo,
      sku: l.sku,
      quantity: l.quantity,
      ...ends,
      reference: d.documentId,
      ...(d.operator === undefined ? {} : { actor: `${d.storeId}/${d.operator}` }),
    };
    const checked = movement.safeParse(m);
    if (!checked.success) {
      for (const issue of describeIssues(checked.error, m))
        issues.push({ path: `lines[${i}] (movement ${issue.path})`, message: issue.message });
    } else movements.push(checked.data);
  });
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, document: d, movements };
}

/** The units a document names, with the field each comes from (for "unknown unit" reports). */
export function unitsOf(d: ErpDocument): Array<{ unitId: string; path: string }> {
  return d.lines.flatMap((l, i) => [
    { unitId: l.location, path: `lines[${i}].location` },
    ...(l.transitBoxId ? [{ unitId: l.transitBoxId, path: `lines[${i}].transitBoxId` }] : []),
  ]);
}
