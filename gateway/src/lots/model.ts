/**
 * Lot master data and the lots service's request shapes: products (keyed by SKU, with storage
 * class and stability budget), lots (referencing a product), decisions and transfer checks.
 * All zod-validated; REST and service share these schemas.
 */
import { epochMs, lotId, segmentId } from "@coldtrace/protocol";
import { z } from "zod";

/** Storage classes of the product master (labelled storage conditions). */
export const storageClass = z.enum(["2-8C", "frozen-20C", "15-25C", "do-not-freeze"]);
export type StorageClass = z.infer<typeof storageClass>;

/** Default labelled range per class, °C. Product master data may narrow or override it. */
export const classRange: Record<StorageClass, { lowC: number | null; highC: number | null }> = {
  "2-8C": { lowC: 2, highC: 8 },
  "frozen-20C": { lowC: null, highC: -20 },
  "15-25C": { lowC: 15, highC: 25 },
  // Do-not-freeze products (many diluents, some devices): above 0 °C, room temperature at most.
  "do-not-freeze": { lowC: 0, highC: 25 },
};

const minutes = z.number().min(0, "must be ≥ 0 minutes").nullable();

export const product = z
  .object({
    sku: z.string().min(1).max(64),
    name: z.string().min(1).max(200),
    storageClass,
    /** Labelled range; defaults to the storage class's range. */
    lowC: z.number().nullable().optional(),
    highC: z.number().nullable().optional(),
    /**
     * Stability budget: cumulative minutes the product may spend beyond its range, per side,
     * over its whole life (every unit it has been in). null: no budget on that side.
     */
    budgetMinutes: z.object({ high: minutes, low: minutes }).strict().default({ high: null, low: null }),
    /** Absolute limits never to cross, e.g. "never below 0 °C". */
    absoluteMinC: z.number().nullable().default(null),
    absoluteMaxC: z.number().nullable().default(null),
    /** Any freeze makes the product unusable; true for the do-not-freeze class. */
    doNotFreeze: z.boolean().optional(),
  })
  .strict();
export type ProductInput = z.input<typeof product>;

export interface Product {
  sku: string;
  name: string;
  storageClass: StorageClass;
  lowC: number | null;
  highC: number | null;
  budgetMinutes: { high: number | null; low: number | null };
  absoluteMinC: number | null;
  absoluteMaxC: number | null;
  doNotFreeze: boolean;
}

export function normalizeProduct(p: z.output<typeof product>): Product {
  const range = classRange[p.storageClass];
  return {
    sku: p.sku,
    name: p.name,
    storageClass: p.storageClass,
    lowC: p.lowC === undefined ? range.lowC : p.lowC,
    highC: p.highC === undefined ? range.highC : p.highC,
    budgetMinutes: p.budgetMinutes,
    absoluteMinC: p.absoluteMinC,
    absoluteMaxC: p.absoluteMaxC,
    doNotFreeze: p.doNotFreeze ?? p.storageClass === "do-not-freeze",
  };
}

export const lot = z
  .object({
    lotId,
    sku: z.string().min(1).max(64),
    expiresAt: epochMs.nullable().default(null),
    serialNumbers: z.array(z.string().min(1).max(128)).max(10_000).default([]),
  })
  .strict();
export type LotInput = z.input<typeof lot>;
export type Lot = z.output<typeof lot>;

export const decision = z
  .object({
    siteId: segmentId,
    lotId,
    by: z.string().min(1, "must name who decided").max(128),
    reason: z.string().min(1, "must give a reason").max(500),
  })
  .strict();
export type DecisionInput = z.input<typeof decision>;

export const rejectDecision = decision.extend({ returnToSupplier: z.boolean().default(false) }).strict();
export type RejectInput = z.input<typeof rejectDecision>;

/**
 * Transit packaging classes and the worst-case minutes beyond range they allow on a route.
 * A qualified box holds its range for its qualified time (per its qualification report);
 * beyond that, and for unqualified packaging, the whole transit counts as exposure.
 */
export const boxClass = z.enum(["qualified-48h", "qualified-24h", "qualified-8h", "insulated", "none"]);
export type BoxClass = z.infer<typeof boxClass>;
const qualifiedMinutes: Record<BoxClass, number> = {
  "qualified-48h": 48 * 60,
  "qualified-24h": 24 * 60,
  "qualified-8h": 8 * 60,
  insulated: 0,
  none: 0,
};
export function worstCaseExposureMinutes(box: BoxClass, transitMinutes: number): number {
  return Math.max(0, transitMinutes - qualifiedMinutes[box]);
}

export const transferCheck = z
  .object({
    lotId,
    quantity: z.number().int("must be a whole number of units").min(1, "must be at least 1"),
    fromUnitId: segmentId,
    toUnitId: segmentId.optional(),
    toSiteId: segmentId.optional(),
    expectedTransitMinutes: z.number().min(0, "must be ≥ 0"),
    boxClass,
  })
  .strict();
export type TransferCheckInput = z.input<typeof transferCheck>;

export const eligibilityQuery = z
  .object({ siteId: segmentId.optional(), lotId: lotId.optional() })
  .strict()
  .refine((q) => q.siteId !== undefined || q.lotId !== undefined, {
    message: "give siteId or lotId",
    path: ["siteId"],
  });
export type EligibilityQuery = z.input<typeof eligibilityQuery>;

export interface RecordingGapInput {
  siteId: string;
  unitId: string;
  from: number;
  to: number;
  gapId: string;
}

/** Paging of the list endpoints: ordered by key, `after` the last key of the previous page. */
export const pageQuery = z
  .object({
    after: z.string().max(128).optional(),
    limit: z.coerce.number().int("must be a whole number").min(1).max(10_000).default(1000),
  })
  .strict();

export const lotListQuery = pageQuery.extend({ sku: z.string().min(1).max(64).optional() }).strict();

export const occupancyQuery = z
  .object({
    unitId: segmentId,
    at: z.coerce.number().int("must be epoch milliseconds").optional(),
  })
  .strict();

export const holdQuery = z
  .object({ siteId: segmentId.optional(), lotId: lotId.optional() })
  .strict()
  .refine((q) => q.siteId !== undefined || q.lotId !== undefined, {
    message: "give siteId or lotId",
    path: ["siteId"],
  });

export const exposureQuery = z.object({ lotId }).strict();
export const skuParams = z.object({ sku: z.string().min(1).max(64) }).strict();
export const lotParams = z.object({ lotId }).strict();

// ── what the routes answer (response schemas of /openapi.json) ─────────────────────────────

const nullableNumber = z.number().nullable();

/** A product as stored: the labelled range resolved from the storage class. */
export const productRecord = z.object({
  sku: z.string(),
  name: z.string(),
  storageClass,
  lowC: nullableNumber,
  highC: nullableNumber,
  budgetMinutes: z.object({ high: nullableNumber, low: nullableNumber }),
  absoluteMinC: nullableNumber,
  absoluteMaxC: nullableNumber,
  doNotFreeze: z.boolean(),
});

export const lotRecord = z.object({
  lotId: z.string(),
  sku: z.string(),
  expiresAt: z.number().int().nullable(),
  serialNumbers: z.array(z.string()),
});

export const movementResult = z.object({ duplicate: z.boolean() });

export const importReport = z.object({
  ok: z.boolean(),
  rows: z.number().int(),
  imported: z.number().int(),
  duplicates: z.number().int(),
  errors: z.array(
    z.object({
      row: z.number().int(),
      column: z.string(),
      message: z.string(),
      value: z.string().optional(),
    }),
  ),
});

export const transferVerdictRecord = z.object({ allow: z.boolean(), reasons: z.array(z.string()) });

export const occupantRecord = z.object({ lotId: z.string(), siteId: z.string(), quantity: z.number().int() });

export const holdRecord = z.object({
  holdId: z.string(),
  siteId: z.string(),
  lotId: z.string(),
  unitId: z.string(),
  causeId: z.string(),
  quantity: z.number().int(),
  status: z.enum(["quarantined", "flagged", "released", "rejected", "returned_to_supplier", "lifted"]),
  reason: z.string(),
  createdAt: z.number().int(),
  decidedBy: z.string().nullable(),
  decidedReason: z.string().nullable(),
  decidedAt: z.number().int().nullable(),
});

export const exposureRecord = z.object({
  causeId: z.string(),
  cause: z.enum(["excursion", "gap"]),
  lotId: z.string(),
  unitId: z.string(),
  siteId: z.string(),
  from: z.number().int(),
  to: z.number().int(),
  quantity: z.number().int(),
  side: z.string().nullable(),
  tier: z.string().nullable(),
  minutesAbove: z.number(),
  minutesBelow: z.number(),
  peakC: nullableNumber,
  troughC: nullableNumber,
  mktC: nullableNumber,
  coveredMs: z.number(),
  uncoveredMs: z.number(),
});
