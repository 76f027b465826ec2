/**
 * The lots service: lot master data, the occupancy ledger built from movements, correlation
 * of excursions and recording gaps with the lots that were inside, exposure and stability
 * budget per lot, the quarantine policy and states, and the events for the transfer planner.
 *
 *   movement ─▶ lot_movements ─▶ lot_occupancy (per lot, recomputed in event-time order)
 *   excursion/gap ─▶ overlapping occupancy ─▶ readings of the lot's own interval
 *        ─▶ summarizeExposure (excursion engine) ─▶ lot_exposures ─▶ budget used per site
 *        ─▶ policy ─▶ holds where the exposed quantity is NOW (traced through later movements)
 *        ─▶ lot event + retained eligibility, in the same transaction (event outbox)
 *
 * Every state change and its events commit together (gateway/src/outbox); write operations
 * are serialised, so lotSeq numbers the events of one lot and site 1, 2, 3 … without gaps.
 */
import { createHash } from "node:crypto";
import {
  ColdtraceError,
  describeIssues,
  type Eligibility,
  type ExcursionEvent,
  formatTopic,
  type LotEvent,
  type Movement,
  validatePayload,
} from "@coldtrace/protocol";
import type pino from "pino";
import type { z } from "zod";
import { summarizeExposure } from "../excursions/metrics.ts";
import type { Clock } from "../kernel/clock.ts";
import { createEventOutbox, type Outbox } from "../outbox/index.ts";
import { type RecordDb, type SqlDatabase, type SqlExecutor, sqlDatabase } from "../storage/sql/database.ts";
import { Mutex } from "../storage/sql/lock.ts";
import type { ReadingStore, StoredReading } from "../storage/types.ts";
import { type CsvImportReport, type ImportOptions, type ParsedMovements, readMovementsCsv } from "./csv.ts";
import { type LedgerMovement, lotIntervals, OPEN_END, traceExposure } from "./ledger.ts";
import {
  type DecisionInput,
  decision as decisionSchema,
  type EligibilityQuery,
  eligibilityQuery,
  type Lot,
  type LotInput,
  lot as lotSchema,
  normalizeProduct,
  type Product,
  type ProductInput,
  product as productSchema,
  type RecordingGapInput,
  type RejectInput,
  rejectDecision,
  type TransferCheckInput,
  transferCheck,
  worstCaseExposureMinutes,
} from "./model.ts";
import { type Decision, decide, defaultPolicy, type QuarantinePolicy } from "./policy.ts";
import { lotsDdl, lotsV2Published } from "./schema.ts";

/** The excursion engine's exposure summary (gateway/src/excursions/metrics.ts). */
export interface ExposureSummary {
  peakC: number | null;
  troughC: number | null;
  minutesAbove: number;
  minutesBelow: number;
  mktC: number | null;
  coveredMs: number;
  uncoveredMs: number;
}
export type SummarizeExposure = (
  points: Array<{ t: number; tempC: number }>,
  limits: { high?: number; low?: number },
  window: { from: number; to: number },
) => ExposureSummary;

export interface LotServiceDeps {
  /** The records database (through the SQL seam, or as storage opened it). */
  db: RecordDb | SqlDatabase;
  /**
   * The gateway's outbox (its table already created). Default: the service opens one on `db`;
   * whoever runs it then starts a dispatcher on it.
   */
  outbox?: Outbox;
  readings: Pick<ReadingStore, "range">;
  policy?: QuarantinePolicy;
  clock?: Clock;
  log: pino.Logger;
  /** The unit's own range, used when a product has no labelled range on a side. */
  unitLimits(unitId: string): { high?: number; low?: number } | undefined;
  /** Override the exposure summary (defaults to the excursion engine's summarizeExposure). */
  summarizeExposure?: SummarizeExposure;
}

export interface OccupancyRow {
  lotId: string;
  siteId: string;
  quantity: number;
  from: number;
  /** null while the stock is still inside. */
  to: number | null;
}

export interface LotExposure {
  causeId: string;
  cause: "excursion" | "gap";
  lotId: string;
  unitId: string;
  siteId: string;
  from: number;
  to: number;
  quantity: number;
  side: string | null;
  tier: string | null;
  minutesAbove: number;
  minutesBelow: number;
  peakC: number | null;
  troughC: number | null;
  mktC: number | null;
  coveredMs: number;
  uncoveredMs: number;
}

export interface LotHold {
  holdId: string;
  siteId: string;
  lotId: string;
  unitId: string;
  causeId: string;
  quantity: number;
  status: "quarantined" | "flagged" | "released" | "rejected" | "returned_to_supplier";
  reason: string;
  createdAt: number;
  decidedBy: string | null;
  decidedReason: string | null;
  decidedAt: number | null;
}

export interface TransferVerdict {
  allow: boolean;
  reasons: string[];
}

export interface LotService {
  readonly outbox: Outbox;
  readonly policy: QuarantinePolicy;
  upsertProduct(p: ProductInput): Promise<Product>;
  getProduct(sku: string): Promise<Product | undefined>;
  /** Every product of the master data, by SKU. */
  listProducts(): Promise<Product[]>;
  upsertLot(l: LotInput): Promise<Lot>;
  getLot(lotId: string): Promise<Lot | undefined>;
  /** Every lot of the master data (of one SKU), by lot number. */
  listLots(q: { sku?: string }): Promise<Lot[]>;
  /** Idempotent by movementId; placed by occurredAt whatever the arrival order. */
  recordMovement(m: Movement): Promise<{ duplicate: boolean }>;
  /** Many movements in ONE transaction (all or nothing); used by CSV import and bulk loads. */
  recordMovements(
    ms: readonly Movement[],
    onProgress?: (done: number) => void,
  ): Promise<{ inserted: number; duplicates: number }>;
  importCsv(text: string, opts?: ImportOptions): Promise<CsvImportReport>;
  /** Import rows already read from a file (CSV or .xlsx, see import-file.ts): all or nothing. */
  importMovements(parsed: ParsedMovements): Promise<CsvImportReport>;
  onExcursion(e: ExcursionEvent): Promise<void>;
  onRecordingGap(g: RecordingGapInput): Promise<void>;
  release(d: DecisionInput): Promise<Eligibility>;
  reject(d: RejectInput): Promise<Eligibility>;
  eligibility(q: EligibilityQuery): Promise<Eligibility[]>;
  checkTransfer(q: TransferCheckInput): Promise<TransferVerdict>;
  occupancy(unitId: string, at: number): Promise<Array<{ lotId: string; siteId: string; quantity: number }>>;
  occupancyIntervals(unitId: string, from: number, to: number): Promise<OccupancyRow[]>;
  exposures(lotId: string): Promise<LotExposure[]>;
  holds(q: { lotId?: string; siteId?: string }): Promise<LotHold[]>;
  /**
   * Publish the eligibility of lots (with stock) that expired since the last sweep, so retained
   * states flip to ineligible without waiting for another change. Call periodically (e.g. each
   * minute); the first call after start covers every expired lot. Returns the states published.
   */
  sweepExpired(): Promise<number>;
  /** Lots (with stock) whose budget or hold would be affected by an excursion/gap in this window. */
  lotsInWindow(unitId: string, from: number, to: number): Promise<OccupancyRow[]>;
}

function invalid(where: string, err: z.ZodError, input: unknown): ColdtraceError {
  const issues = describeIssues(err, input);
  return new ColdtraceError(
    "CT_LOT_INVALID",
    `${where}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")}`,
    { where, issues },
  );
}

function parse<S extends z.ZodType>(schema: S, where: string, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw invalid(where, r.error, input);
  return r.data;
}

/** A lot number as an eventId piece: readable slug plus a hash, since `/` and spaces are not allowed. */
function lotKey(lotId: string): string {
  const slug = lotId.replace(/[^A-Za-z0-9._:-]+/g, "-").slice(0, 24);
  const hash = createHash("sha256").update(lotId).digest("hex").slice(0, 6);
  return `${slug}-${hash}`;
}

/**
 * How far before a lot's interval we fetch readings: the reading in effect at the start of the
 * interval (sample-and-hold, excursion engine's step rule) was taken before it.
 */
const READING_LOOKBACK_MS = 30 * 60_000;

interface ProductRow {
  sku: string;
  name: string;
  storage_class: string;
  low_c: number | null;
  high_c: number | null;
  budget_high: number | null;
  budget_low: number | null;
  absolute_min_c: number | null;
  absolute_max_c: number | null;
  do_not_freeze: number;
}
function toProduct(r: ProductRow): Product {
  return {
    sku: r.sku,
    name: r.name,
    storageClass: r.storage_class as Product["storageClass"],
    lowC: r.low_c,
    highC: r.high_c,
    budgetMinutes: { high: r.budget_high, low: r.budget_low },
    absoluteMinC: r.absolute_min_c,
    absoluteMaxC: r.absolute_max_c,
    doNotFreeze: Number(r.do_not_freeze) === 1,
  };
}

interface MovementRow {
  movement_id: string;
  kind: string;
  site_id: string;
  occurred_at: number;
  lot_id: string;
  quantity: number;
  from_unit_id: string | null;
  to_unit_id: string | null;
}
function toLedger(r: MovementRow): LedgerMovement {
  return {
    movementId: r.movement_id,
    kind: r.kind as Movement["kind"],
    siteId: r.site_id,
    occurredAt: Number(r.occurred_at),
    lotId: r.lot_id,
    quantity: Number(r.quantity),
    ...(r.from_unit_id !== null ? { fromUnitId: r.from_unit_id } : {}),
    ...(r.to_unit_id !== null ? { toUnitId: r.to_unit_id } : {}),
  };
}

interface HoldRow {
  hold_id: string;
  site_id: string;
  lot_id: string;
  unit_id: string;
  cause_id: string;
  quantity: number;
  status: string;
  reason: string;
  created_at: number;
  decided_by: string | null;
  decided_reason: string | null;
  decided_at: number | null;
}
function toHold(r: HoldRow): LotHold {
  return {
    holdId: r.hold_id,
    siteId: r.site_id,
    lotId: r.lot_id,
    unitId: r.unit_id,
    causeId: r.cause_id,
    quantity: Number(r.quantity),
    status: r.status as LotHold["status"],
    reason: r.reason,
    createdAt: Number(r.created_at),
    decidedBy: r.decided_by,
    decidedReason: r.decided_reason,
    decidedAt: r.decided_at === null ? null : Number(r.decided_at),
  };
}

const INSERT_MOVEMENT = `INSERT INTO lot_movements
  (movement_id, kind, site_id, occurred_at, lot_id, sku, quantity, from_unit_id, to_unit_id, reference, actor, recorded_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (movement_id) DO NOTHING`;
const INSERT_OCCUPANCY = `INSERT INTO lot_occupancy (lot_id, unit_id, site_id, quantity, from_at, to_at) VALUES (?, ?, ?, ?, ?, ?)`;

export async function createLotService(deps: LotServiceDeps): Promise<LotService> {
  const log = deps.log.child({ component: "lots" });
  const clock = deps.clock ?? Date;
  const policy = deps.policy ?? defaultPolicy;
  const sql: SqlDatabase = "transaction" in deps.db ? deps.db : sqlDatabase(deps.db);
  let outbox: Outbox;
  if (deps.outbox) {
    outbox = deps.outbox;
  } else {
    const own = createEventOutbox(sql, clock);
    await own.init();
    outbox = own;
  }
  await sql.migrate("lots", [lotsDdl, lotsV2Published]);
  const summarize: SummarizeExposure = deps.summarizeExposure ?? summarizeExposure;
  const writes = new Mutex();
  let lastSweep = 0;

  /** One serialised write: the transaction, then wake the dispatcher. */
  const write = <T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> =>
    writes.lock(async () => {
      const out = await sql.transaction(fn);
      outbox.notify();
      return out;
    });

  const getProduct = async (ex: SqlExecutor, sku: string) => {
    const [r] = await ex.all<ProductRow>(`SELECT * FROM lot_products WHERE sku = ?`, [sku]);
    return r ? toProduct(r) : undefined;
  };
  type LotRow = { lot_id: string; sku: string; expires_at: number | null; serials: string };
  const toLot = (r: LotRow): Lot => ({
    lotId: r.lot_id,
    sku: r.sku,
    expiresAt: r.expires_at === null ? null : Number(r.expires_at),
    serialNumbers: JSON.parse(r.serials) as string[],
  });
  const getLot = async (ex: SqlExecutor, lotId: string): Promise<Lot | undefined> => {
    const [r] = await ex.all<LotRow>(`SELECT * FROM lot_lots WHERE lot_id = ?`, [lotId]);
    return r ? toLot(r) : undefined;
  };
  const lotMovements = async (ex: SqlExecutor, lotId: string) =>
    (await ex.all<MovementRow>(`SELECT * FROM lot_movements WHERE lot_id = ?`, [lotId])).map(toLedger);

  const openSites = async (ex: SqlExecutor, lotId: string) =>
    (
      await ex.all<{ site_id: string }>(
        `SELECT DISTINCT site_id FROM lot_occupancy WHERE lot_id = ? AND to_at = ?`,
        [lotId, OPEN_END],
      )
    ).map((r) => r.site_id);

  /** Rebuild a lot's ledger from all its movements (event-time order, arrival order irrelevant). */
  const rebuildOccupancy = async (ex: SqlExecutor, lotId: string, ms: readonly LedgerMovement[]) => {
    await ex.run(`DELETE FROM lot_occupancy WHERE lot_id = ?`, [lotId]);
    for (const iv of lotIntervals(ms)) {
      await ex.run(INSERT_OCCUPANCY, [iv.lotId, iv.unitId, iv.siteId, iv.quantity, iv.from, iv.to]);
    }
  };

  /**
   * Budget used by the stock now at each site: every exposure of the lot, traced through later
   * movements to the units it may have reached, summed per unit; a site takes its worst unit.
   */
  const rebuildBudget = async (ex: SqlExecutor, lotId: string, ms: readonly LedgerMovement[]) => {
    const rows = await ex.all<{
      cause: string;
      unit_id: string;
      to_at: number;
      quantity: number;
      side: string | null;
      minutes_above: number;
      minutes_below: number;
    }>(
      `SELECT cause, unit_id, to_at, quantity, side, minutes_above, minutes_below FROM lot_exposures WHERE lot_id = ?`,
      [lotId],
    );
    const before = (
      await ex.all<{ site_id: string }>(`SELECT site_id FROM lot_budget WHERE lot_id = ?`, [lotId])
    ).map((r) => r.site_id);
    await ex.run(`DELETE FROM lot_budget WHERE lot_id = ?`, [lotId]);
    const perUnit = new Map<string, { siteId: string; high: number; low: number }>();
    for (const r of rows) {
      if (r.cause !== "excursion") continue; // a gap's exposure is unknown, not zero: the policy decides
      const high = r.side === "high" ? Number(r.minutes_above) : 0;
      const low = r.side === "low" ? Number(r.minutes_below) : 0;
      for (const h of traceExposure(ms, {
        unitId: r.unit_id,
        exposedUntil: Number(r.to_at),
        quantity: Number(r.quantity),
      })) {
        const cur = perUnit.get(h.unitId) ?? { siteId: h.siteId, high: 0, low: 0 };
        cur.high += high;
        cur.low += low;
        perUnit.set(h.unitId, cur);
      }
    }
    const perSite = new Map<string, { high: number; low: number }>();
    for (const u of perUnit.values()) {
      const cur = perSite.get(u.siteId) ?? { high: 0, low: 0 };
      perSite.set(u.siteId, { high: Math.max(cur.high, u.high), low: Math.max(cur.low, u.low) });
    }
    for (const [siteId, used] of perSite) {
      await ex.run(`INSERT INTO lot_budget (site_id, lot_id, used_high, used_low) VALUES (?, ?, ?, ?)`, [
        siteId,
        lotId,
        used.high,
        used.low,
      ]);
    }
    return new Set([...before, ...perSite.keys()]);
  };

  const ensureLot = async (ex: SqlExecutor, lotId: string, sku: string) => {
    await ex.run(
      `INSERT INTO lot_lots (lot_id, sku, expires_at, serials, updated_at) VALUES (?, ?, NULL, '[]', ?)
       ON CONFLICT (lot_id) DO NOTHING`,
      [lotId, sku, clock.now()],
    );
  };

  /** The eligibility state from what is known about a lot at a site (pure). */
  const composeEligibility = (
    siteId: string,
    lotId: string,
    f: {
      lot: Lot | undefined;
      product: Product | undefined;
      stock: number;
      holds: ReadonlyArray<{ status: string; reason: string }>;
      state: { status: string; lot_seq: number } | undefined;
      used: { used_high: number; used_low: number } | undefined;
    },
  ): Eligibility => {
    const now = clock.now();
    const { lot, product, holds, state, used } = f;
    const reasons: string[] = [];
    const quarantined = holds.filter((h) => h.status === "quarantined");
    let status = (
      quarantined.length > 0 ? "quarantined" : (state?.status ?? "available")
    ) as Eligibility["status"];
    if (status === "quarantined" && quarantined.length === 0) status = "available";
    for (const h of quarantined) reasons.push(`quarantined: ${h.reason}`);
    for (const h of holds.filter((x) => x.status === "flagged"))
      reasons.push(`flagged for QA review: ${h.reason}`);
    if (status === "rejected") reasons.push("rejected by QA");
    if (status === "returned_to_supplier") reasons.push("returned to supplier");
    const expiresAt = lot?.expiresAt ?? null;
    const expired = expiresAt !== null && expiresAt <= now;
    if (expired) reasons.push(`expired at ${new Date(expiresAt).toISOString()}`);
    if (!product) reasons.push(`no product master data for SKU ${lot?.sku ?? "?"}: stability budget unknown`);
    const remaining = (side: "high" | "low") => {
      const budget = product?.budgetMinutes[side] ?? null;
      if (budget === null) return null;
      const u = used ? Number(side === "high" ? used.used_high : used.used_low) : 0;
      // Whole minutes, rounded down (never more budget than is left): a planner compares it
      // with whole-minute route times, and the retained state changes once a minute, not at
      // every reading of an excursion. Rounded to 0.01 first so 29.9999999 stays 30.
      return Math.max(0, Math.floor(Math.round((budget - u) * 100) / 100));
    };
    const eligible = (status === "available" || status === "released") && !expired;
    return {
      v: 1,
      siteId,
      lotId,
      sku: lot?.sku ?? "unknown",
      status,
      eligible,
      expiresAt,
      transferableQuantity: eligible ? f.stock : 0,
      remainingBudgetMinutes: { high: remaining("high"), low: remaining("low") },
      reasons: reasons.map((r) => r.slice(0, 500)),
      updatedAt: now,
      lotSeq: Number(state?.lot_seq ?? 0),
    };
  };

  const eligibilityOf = async (ex: SqlExecutor, siteId: string, lotId: string): Promise<Eligibility> => {
    const lot = await getLot(ex, lotId);
    const product = lot ? await getProduct(ex, lot.sku) : undefined;
    const [stockRow] = await ex.all<{ n: number | null }>(
      `SELECT SUM(quantity) AS n FROM lot_occupancy WHERE lot_id = ? AND site_id = ? AND to_at = ?`,
      [lotId, siteId, OPEN_END],
    );
    const holds = await ex.all<{ status: string; reason: string }>(
      `SELECT status, reason FROM lot_holds WHERE site_id = ? AND lot_id = ? AND status IN ('quarantined', 'flagged') ORDER BY created_at, hold_id`,
      [siteId, lotId],
    );
    const [state] = await ex.all<{ status: string; lot_seq: number }>(
      `SELECT status, lot_seq FROM lot_site_state WHERE site_id = ? AND lot_id = ?`,
      [siteId, lotId],
    );
    const [used] = await ex.all<{ used_high: number; used_low: number }>(
      `SELECT used_high, used_low FROM lot_budget WHERE site_id = ? AND lot_id = ?`,
      [siteId, lotId],
    );
    return composeEligibility(siteId, lotId, {
      lot,
      product,
      stock: Number(stockRow?.n ?? 0),
      holds,
      state,
      used,
    });
  };

  /** Every lot of a site (with stock or a state there) in six set queries, not six per lot. */
  const eligibilityForSite = async (ex: SqlExecutor, siteId: string): Promise<Eligibility[]> => {
    const stock = new Map(
      (
        await ex.all<{ lot_id: string; n: number }>(
          `SELECT lot_id, SUM(quantity) AS n FROM lot_occupancy WHERE site_id = ? AND to_at = ? GROUP BY lot_id`,
          [siteId, OPEN_END],
        )
      ).map((r) => [r.lot_id, Number(r.n)]),
    );
    const states = new Map(
      (
        await ex.all<{ lot_id: string; status: string; lot_seq: number }>(
          `SELECT lot_id, status, lot_seq FROM lot_site_state WHERE site_id = ?`,
          [siteId],
        )
      ).map((r) => [r.lot_id, r]),
    );
    const holds = new Map<string, Array<{ status: string; reason: string }>>();
    for (const h of await ex.all<{ lot_id: string; status: string; reason: string }>(
      `SELECT lot_id, status, reason FROM lot_holds WHERE site_id = ? AND status IN ('quarantined', 'flagged') ORDER BY created_at, hold_id`,
      [siteId],
    )) {
      const list = holds.get(h.lot_id) ?? [];
      list.push(h);
      holds.set(h.lot_id, list);
    }
    const used = new Map(
      (
        await ex.all<{ lot_id: string; used_high: number; used_low: number }>(
          `SELECT lot_id, used_high, used_low FROM lot_budget WHERE site_id = ?`,
          [siteId],
        )
      ).map((r) => [r.lot_id, r]),
    );
    const lots = new Map<string, Lot>();
    for (const r of await ex.all<{ lot_id: string; sku: string; expires_at: number | null; serials: string }>(
      `SELECT lot_id, sku, expires_at, serials FROM lot_lots WHERE lot_id IN (
         SELECT lot_id FROM lot_occupancy WHERE site_id = ? AND to_at = ? UNION SELECT lot_id FROM lot_site_state WHERE site_id = ?)`,
      [siteId, OPEN_END, siteId],
    )) {
      lots.set(r.lot_id, {
        lotId: r.lot_id,
        sku: r.sku,
        expiresAt: r.expires_at === null ? null : Number(r.expires_at),
        serialNumbers: JSON.parse(r.serials) as string[],
      });
    }
    const products = new Map(
      (await ex.all<ProductRow>(`SELECT * FROM lot_products`)).map((r) => [r.sku, toProduct(r)]),
    );
    const lotIds = [...new Set([...stock.keys(), ...states.keys()])].sort();
    return lotIds.map((lotId) => {
      const lot = lots.get(lotId);
      return composeEligibility(siteId, lotId, {
        lot,
        product: lot ? products.get(lot.sku) : undefined,
        stock: stock.get(lotId) ?? 0,
        holds: holds.get(lotId) ?? [],
        state: states.get(lotId),
        used: used.get(lotId),
      });
    });
  };

  /** Next lotSeq of a lot at a site (1, 2, 3 …), inside the caller's transaction. */
  const nextSeq = async (ex: SqlExecutor, siteId: string, lotId: string): Promise<number> => {
    await ex.run(
      `INSERT INTO lot_site_state (site_id, lot_id, status, lot_seq, elig_version, updated_at) VALUES (?, ?, 'available', 1, 0, ?)
       ON CONFLICT (site_id, lot_id) DO UPDATE SET lot_seq = lot_site_state.lot_seq + 1, updated_at = excluded.updated_at`,
      [siteId, lotId, clock.now()],
    );
    const [r] = await ex.all<{ lot_seq: number }>(
      `SELECT lot_seq FROM lot_site_state WHERE site_id = ? AND lot_id = ?`,
      [siteId, lotId],
    );
    return Number(r?.lot_seq ?? 1);
  };

  /**
   * Publish the lot's retained eligibility at the site, unless it is what was published last
   * (updatedAt aside): an excursion updates the lots inside at every reading, and the planner
   * needs a message only when something it acts on changed.
   */
  const publishEligibility = async (ex: SqlExecutor, siteId: string, lotId: string): Promise<Eligibility> => {
    const current = await eligibilityOf(ex, siteId, lotId);
    const content = JSON.stringify({ ...current, updatedAt: 0 });
    const [last] = await ex.all<{ published: string | null }>(
      `SELECT published FROM lot_site_state WHERE site_id = ? AND lot_id = ?`,
      [siteId, lotId],
    );
    if (last?.published === content) return current;
    await ex.run(
      `INSERT INTO lot_site_state (site_id, lot_id, status, lot_seq, elig_version, updated_at, published) VALUES (?, ?, 'available', 0, 1, ?, ?)
       ON CONFLICT (site_id, lot_id) DO UPDATE SET elig_version = lot_site_state.elig_version + 1, published = excluded.published`,
      [siteId, lotId, clock.now(), content],
    );
    const [r] = await ex.all<{ elig_version: number }>(
      `SELECT elig_version FROM lot_site_state WHERE site_id = ? AND lot_id = ?`,
      [siteId, lotId],
    );
    // The row's defaults (available, lotSeq 0) are what `current` assumed for a lot without one.
    const eventId = `elig-${siteId}-${lotKey(lotId)}-${current.lotSeq}-${Number(r?.elig_version ?? 1)}`;
    await outbox.enqueue(
      ex,
      "eligibility",
      formatTopic({ kind: "eligibility", siteId, lotId }),
      current,
      eventId,
    );
    return current;
  };

  const emitLotEvent = async (
    ex: SqlExecutor,
    ev: Omit<LotEvent, "v" | "eventId" | "lotSeq" | "sku" | "at" | "excursionIds"> & {
      excursionIds?: string[];
    },
  ) => {
    const lot = await getLot(ex, ev.lotId);
    const lotSeq = await nextSeq(ex, ev.siteId, ev.lotId);
    const payload: LotEvent = {
      v: 1,
      eventId: `lot-${ev.siteId}-${lotKey(ev.lotId)}-${lotSeq}`,
      at: clock.now(),
      sku: lot?.sku ?? "unknown",
      excursionIds: ev.excursionIds ?? [],
      lotSeq,
      ...ev,
      reason: ev.reason.slice(0, 500),
    };
    await outbox.enqueue(
      ex,
      "lot",
      formatTopic({ kind: "lot", siteId: ev.siteId, lotId: ev.lotId }),
      payload,
      payload.eventId,
    );
    log.info(
      { siteId: ev.siteId, lotId: ev.lotId, type: ev.type, lotSeq, quantity: ev.quantity },
      "lot event",
    );
  };

  /** Insert movements (skipping known ids) and rebuild the ledger of every lot touched. */
  const insertMovements = async (
    ex: SqlExecutor,
    ms: readonly Movement[],
    onProgress?: (done: number) => void,
  ): Promise<{ inserted: number; duplicates: number }> => {
    const now = clock.now();
    const touched = new Map<string, Set<string>>();
    let inserted = 0;
    let i = 0;
    for (const m of ms) {
      const changes = await ex.run(INSERT_MOVEMENT, [
        m.movementId,
        m.kind,
        m.siteId,
        m.occurredAt,
        m.lotId,
        m.sku,
        m.quantity,
        m.fromUnitId ?? null,
        m.toUnitId ?? null,
        m.reference ?? null,
        m.actor ?? null,
        now,
      ]);
      if (changes > 0) {
        inserted++;
        let sites = touched.get(m.lotId);
        if (!sites) {
          sites = new Set<string>();
          touched.set(m.lotId, sites);
          await ensureLot(ex, m.lotId, m.sku);
        }
        sites.add(m.siteId);
      }
      if (onProgress && ++i % 100_000 === 0) onProgress(i);
    }
    let n = 0;
    for (const [lotId, sites] of touched) {
      for (const s of await openSites(ex, lotId)) sites.add(s);
      const lotMs = await lotMovements(ex, lotId);
      await rebuildOccupancy(ex, lotId, lotMs);
      for (const s of await openSites(ex, lotId)) sites.add(s);
      const [hasExposure] = await ex.all(`SELECT 1 AS x FROM lot_exposures WHERE lot_id = ? LIMIT 1`, [
        lotId,
      ]);
      if (hasExposure) {
        for (const s of await rebuildBudget(ex, lotId, lotMs)) sites.add(s);
        for (const s of await carryHolds(ex, lotId, lotMs)) sites.add(s);
      }
      for (const siteId of sites) await publishEligibility(ex, siteId, lotId);
      if (onProgress && ++n % 10_000 === 0) onProgress(ms.length + n);
    }
    return { inserted, duplicates: ms.length - inserted };
  };

  /** Apply the policy's decision where the exposed quantity is now. */
  const applyHold = async (
    ex: SqlExecutor,
    h: {
      siteId: string;
      lotId: string;
      unitId: string;
      quantity: number;
      causeId: string;
      d: Decision;
      excursionIds: string[];
    },
  ) => {
    if (h.d.action === "none") return false;
    const holdId = `${h.causeId}|${h.lotId}|${h.unitId}`;
    const status = h.d.action === "quarantine" ? "quarantined" : "flagged";
    const reason = h.d.reasons.join("; ").slice(0, 500);
    const [existing] = await ex.all<{ status: string; quantity: number }>(
      `SELECT status, quantity FROM lot_holds WHERE hold_id = ?`,
      [holdId],
    );
    if (!existing) {
      await ex.run(
        `INSERT INTO lot_holds (hold_id, site_id, lot_id, unit_id, cause_id, quantity, status, reason, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [holdId, h.siteId, h.lotId, h.unitId, h.causeId, h.quantity, status, reason, clock.now()],
      );
    } else if (existing.status === "flagged" && status === "quarantined") {
      await ex.run(`UPDATE lot_holds SET status = ?, reason = ?, quantity = ? WHERE hold_id = ?`, [
        status,
        reason,
        Math.max(h.quantity, Number(existing.quantity)),
        holdId,
      ]);
    } else {
      if (
        h.quantity > Number(existing.quantity) &&
        (existing.status === "quarantined" || existing.status === "flagged")
      ) {
        await ex.run(`UPDATE lot_holds SET quantity = ? WHERE hold_id = ?`, [h.quantity, holdId]);
      }
      return false;
    }
    await emitLotEvent(ex, {
      siteId: h.siteId,
      type: status === "quarantined" ? "lot.quarantined" : "lot.flagged_for_review",
      lotId: h.lotId,
      unitId: h.unitId,
      quantity: h.quantity,
      reason,
      excursionIds: h.excursionIds,
    });
    return true;
  };

  /**
   * Held stock that moves keeps its hold: for every cause with an open hold on the lot, trace
   * that cause's exposures to where the stock is now and hold it there too (same decision).
   * Returns the sites that got a new hold.
   */
  const carryHolds = async (ex: SqlExecutor, lotId: string, ms: readonly LedgerMovement[]) => {
    const sites = new Set<string>();
    const open = await ex.all<{ cause_id: string; status: string; reason: string }>(
      `SELECT cause_id, status, reason FROM lot_holds WHERE lot_id = ? AND status IN ('quarantined', 'flagged')
       ORDER BY created_at, hold_id`,
      [lotId],
    );
    const byCause = new Map<string, { status: string; reason: string }>();
    for (const h of open) {
      const cur = byCause.get(h.cause_id);
      if (!cur || (cur.status === "flagged" && h.status === "quarantined")) byCause.set(h.cause_id, h);
    }
    for (const [causeId, h] of byCause) {
      const exposures = await ex.all<{ cause: string; unit_id: string; to_at: number; quantity: number }>(
        `SELECT cause, unit_id, to_at, quantity FROM lot_exposures WHERE lot_id = ? AND cause_id = ?`,
        [lotId, causeId],
      );
      for (const e of exposures) {
        const traced = traceExposure(ms, {
          unitId: e.unit_id,
          exposedUntil: Number(e.to_at),
          quantity: Number(e.quantity),
        });
        for (const now of traced) {
          const created = await applyHold(ex, {
            siteId: now.siteId,
            lotId,
            unitId: now.unitId,
            quantity: now.exposed,
            causeId,
            d: { action: h.status === "quarantined" ? "quarantine" : "flag", reasons: [h.reason] },
            excursionIds: e.cause === "excursion" ? [causeId] : [],
          });
          if (created) sites.add(now.siteId);
        }
      }
    }
    return sites;
  };

  /** Correlate one cause (excursion or gap) in a unit's window with the lots inside. */
  const correlate = async (c: {
    cause: "excursion" | "gap";
    causeId: string;
    unitId: string;
    from: number;
    to: number;
    side?: "high" | "low";
    tier?: "alert" | "action";
  }) =>
    writes.lock(async () => {
      const ivs = await intervalsIn(sql, c.unitId, c.from, c.to);
      if (ivs.length === 0) {
        log.debug({ causeId: c.causeId, unitId: c.unitId }, "no lots inside");
        return;
      }
      // Exposure of each lot for its OWN time inside, from the unit's readings: one range
      // query for the whole window (plus the reading in effect at its start), sliced per lot.
      let fetched: StoredReading[] | undefined;
      const windowReadings = async () => {
        fetched ??= await deps.readings.range({
          unitId: c.unitId,
          from: c.from - READING_LOOKBACK_MS,
          to: Math.max(c.to, c.from + 1),
        });
        return fetched;
      };
      const products = new Map<string, Product | null>();
      const exposures: LotExposure[] = [];
      for (const iv of ivs) {
        const from = Math.max(iv.from, c.from);
        const to = Math.max(from, Math.min(iv.to ?? OPEN_END, c.to));
        let product = products.get(iv.lotId);
        if (product === undefined) {
          const lot = await getLot(sql, iv.lotId);
          product = (lot ? await getProduct(sql, lot.sku) : undefined) ?? null;
          products.set(iv.lotId, product);
        }
        const unit = deps.unitLimits(c.unitId) ?? {};
        const limits: { high?: number; low?: number } = {};
        const high = product?.highC ?? unit.high;
        const low = product?.lowC ?? unit.low;
        if (high !== undefined && high !== null) limits.high = high;
        if (low !== undefined && low !== null) limits.low = low;
        const byProbe = new Map<string, Array<{ t: number; tempC: number }>>();
        if (to > from) {
          for (const r of await windowReadings()) {
            if (r.observedAt >= to) break;
            if (r.quality !== "ok" || r.tempC === null) continue;
            const list = byProbe.get(r.probeId) ?? [];
            list.push({ t: r.observedAt, tempC: r.tempC });
            byProbe.set(r.probeId, list);
          }
        }
        // Several probes in one unit: the lot gets the worst of them (warmest/coldest spot).
        let s: ExposureSummary = {
          peakC: null,
          troughC: null,
          minutesAbove: 0,
          minutesBelow: 0,
          mktC: null,
          coveredMs: 0,
          uncoveredMs: to - from,
        };
        for (const points of byProbe.values()) {
          points.sort((a, b) => a.t - b.t);
          const p = summarize(points, limits, { from, to });
          s = {
            peakC: s.peakC === null ? p.peakC : p.peakC === null ? s.peakC : Math.max(s.peakC, p.peakC),
            troughC:
              s.troughC === null
                ? p.troughC
                : p.troughC === null
                  ? s.troughC
                  : Math.min(s.troughC, p.troughC),
            minutesAbove: Math.max(s.minutesAbove, p.minutesAbove),
            minutesBelow: Math.max(s.minutesBelow, p.minutesBelow),
            mktC: s.mktC === null ? p.mktC : p.mktC === null ? s.mktC : Math.max(s.mktC, p.mktC),
            coveredMs: Math.max(s.coveredMs, p.coveredMs),
            uncoveredMs: Math.min(s.uncoveredMs, p.uncoveredMs),
          };
        }
        exposures.push({
          causeId: c.causeId,
          cause: c.cause,
          lotId: iv.lotId,
          unitId: c.unitId,
          siteId: iv.siteId,
          from,
          to,
          quantity: iv.quantity,
          side: c.side ?? null,
          tier: c.tier ?? null,
          ...s,
        });
      }
      await sql.transaction(async (tx) => {
        for (const e of exposures) {
          await tx.run(
            `DELETE FROM lot_exposures WHERE cause_id = ? AND lot_id = ? AND unit_id = ? AND from_at = ?`,
            [e.causeId, e.lotId, e.unitId, e.from],
          );
          await tx.run(
            `INSERT INTO lot_exposures (cause_id, cause, lot_id, unit_id, site_id, from_at, to_at, quantity, side, tier,
              minutes_above, minutes_below, peak_c, trough_c, mkt_c, covered_ms, uncovered_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            [
              e.causeId,
              e.cause,
              e.lotId,
              e.unitId,
              e.siteId,
              e.from,
              e.to,
              e.quantity,
              e.side,
              e.tier,
              e.minutesAbove,
              e.minutesBelow,
              e.peakC,
              e.troughC,
              e.mktC,
              e.coveredMs,
              e.uncoveredMs,
            ],
          );
        }
        const lotIds = [...new Set(exposures.map((e) => e.lotId))];
        for (const lotId of lotIds) {
          const ms = await lotMovements(tx, lotId);
          const sites = await rebuildBudget(tx, lotId, ms);
          const lot = await getLot(tx, lotId);
          const product = lot ? await getProduct(tx, lot.sku) : undefined;
          for (const e of exposures.filter((x) => x.lotId === lotId)) {
            const now = traceExposure(ms, { unitId: e.unitId, exposedUntil: e.to, quantity: e.quantity });
            if (now.length === 0) {
              log.warn(
                { lotId, causeId: c.causeId },
                "exposed quantity no longer in stock (dispensed or destroyed)",
              );
            }
            for (const h of now) {
              const [used] = await tx.all<{ used_high: number; used_low: number }>(
                `SELECT used_high, used_low FROM lot_budget WHERE site_id = ? AND lot_id = ?`,
                [h.siteId, lotId],
              );
              const left = (side: "high" | "low") => {
                const b = product?.budgetMinutes[side] ?? null;
                return b === null
                  ? null
                  : b - Number(used ? (side === "high" ? used.used_high : used.used_low) : 0);
              };
              const d = decide(
                policy,
                {
                  cause: c.cause,
                  ...(c.tier ? { tier: c.tier } : {}),
                  peakC: e.peakC,
                  troughC: e.troughC,
                  doNotFreeze: product?.doNotFreeze ?? false,
                  absoluteMinC: product?.absoluteMinC ?? null,
                  absoluteMaxC: product?.absoluteMaxC ?? null,
                  remaining: { high: left("high"), low: left("low") },
                },
                c.causeId,
              );
              if (h.unitId !== e.unitId)
                d.reasons = d.reasons.map((r) => `${r} (in ${e.unitId}, now in ${h.unitId})`);
              await applyHold(tx, {
                siteId: h.siteId,
                lotId,
                unitId: h.unitId,
                quantity: h.exposed,
                causeId: c.causeId,
                d,
                excursionIds: c.cause === "excursion" ? [c.causeId] : [],
              });
              sites.add(h.siteId);
            }
          }
          for (const siteId of sites) await publishEligibility(tx, siteId, lotId);
        }
      });
      outbox.notify();
    });

  const intervalsIn = async (
    ex: SqlExecutor,
    unitId: string,
    from: number,
    to: number,
  ): Promise<OccupancyRow[]> => {
    // Overlap of [from_at, to_at) with [from, to]; a zero-length window (an excursion just
    // opened) selects what is inside at that instant.
    const rows = await ex.all<{
      lot_id: string;
      site_id: string;
      quantity: number;
      from_at: number;
      to_at: number;
    }>(
      `SELECT lot_id, site_id, quantity, from_at, to_at FROM lot_occupancy
       WHERE unit_id = ? AND to_at > ? AND from_at < ? ORDER BY from_at, lot_id`,
      [unitId, from, Math.max(to, from + 1)],
    );
    return rows.map((r) => ({
      lotId: r.lot_id,
      siteId: r.site_id,
      quantity: Number(r.quantity),
      from: Number(r.from_at),
      to: Number(r.to_at) === OPEN_END ? null : Number(r.to_at),
    }));
  };

  const decideState = async (
    d: { siteId: string; lotId: string; by: string; reason: string },
    to: "released" | "rejected" | "returned_to_supplier",
  ) =>
    write(async (tx) => {
      const active = await tx.all<HoldRow>(
        `SELECT * FROM lot_holds WHERE site_id = ? AND lot_id = ? AND status IN ('quarantined', 'flagged')`,
        [d.siteId, d.lotId],
      );
      const [state] = await tx.all<{ status: string }>(
        `SELECT status FROM lot_site_state WHERE site_id = ? AND lot_id = ?`,
        [d.siteId, d.lotId],
      );
      // Release needs something held; reject may also follow a release (QA changes its mind
      // on new evidence) but never repeats on an already rejected/returned lot.
      const final = state?.status === "rejected" || state?.status === "returned_to_supplier";
      if ((to === "released" && active.length === 0) || (to !== "released" && final)) {
        throw new ColdtraceError(
          "CT_LOT_STATE",
          `lot ${JSON.stringify(d.lotId)} at ${d.siteId} cannot be ${to}: it is ${state?.status ?? "not known there"}${active.length === 0 ? " and not held" : ""}`,
          { siteId: d.siteId, lotId: d.lotId, to, status: state?.status ?? null },
        );
      }
      const now = clock.now();
      await tx.run(
        `UPDATE lot_holds SET status = ?, decided_by = ?, decided_reason = ?, decided_at = ?
         WHERE site_id = ? AND lot_id = ? AND status IN ('quarantined', 'flagged')`,
        [to, d.by, d.reason, now, d.siteId, d.lotId],
      );
      await tx.run(
        `INSERT INTO lot_site_state (site_id, lot_id, status, lot_seq, elig_version, updated_at) VALUES (?, ?, ?, 0, 0, ?)
         ON CONFLICT (site_id, lot_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at`,
        [d.siteId, d.lotId, to, now],
      );
      const [stock] = await tx.all<{ n: number | null }>(
        `SELECT SUM(quantity) AS n FROM lot_occupancy WHERE lot_id = ? AND site_id = ? AND to_at = ?`,
        [d.lotId, d.siteId, OPEN_END],
      );
      await emitLotEvent(tx, {
        siteId: d.siteId,
        type:
          to === "released"
            ? "lot.released"
            : to === "rejected"
              ? "lot.rejected"
              : "lot.returned_to_supplier",
        lotId: d.lotId,
        quantity: Number(stock?.n ?? 0),
        reason: d.reason,
        by: d.by,
        excursionIds: [...new Set(active.map((h) => h.cause_id))].filter((id) =>
          /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/.test(id),
        ),
      });
      return publishEligibility(tx, d.siteId, d.lotId);
    });

  const service: LotService = {
    outbox,
    policy,

    async upsertProduct(input) {
      const p = normalizeProduct(parse(productSchema, "product", input));
      await write((tx) =>
        tx.run(
          `INSERT INTO lot_products (sku, name, storage_class, low_c, high_c, budget_high, budget_low, absolute_min_c, absolute_max_c, do_not_freeze, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (sku) DO UPDATE SET name = excluded.name, storage_class = excluded.storage_class, low_c = excluded.low_c,
             high_c = excluded.high_c, budget_high = excluded.budget_high, budget_low = excluded.budget_low,
             absolute_min_c = excluded.absolute_min_c, absolute_max_c = excluded.absolute_max_c,
             do_not_freeze = excluded.do_not_freeze, updated_at = excluded.updated_at`,
          [
            p.sku,
            p.name,
            p.storageClass,
            p.lowC,
            p.highC,
            p.budgetMinutes.high,
            p.budgetMinutes.low,
            p.absoluteMinC,
            p.absoluteMaxC,
            p.doNotFreeze ? 1 : 0,
            clock.now(),
          ],
        ),
      );
      return p;
    },

    getProduct: (sku) => getProduct(sql, sku),

    async listProducts() {
      return (await sql.all<ProductRow>(`SELECT * FROM lot_products ORDER BY sku`, [])).map(toProduct);
    },

    async upsertLot(input) {
      const l = parse(lotSchema, "lot", input);
      await write(async (tx) => {
        await tx.run(
          `INSERT INTO lot_lots (lot_id, sku, expires_at, serials, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (lot_id) DO UPDATE SET sku = excluded.sku, expires_at = excluded.expires_at, serials = excluded.serials, updated_at = excluded.updated_at`,
          [l.lotId, l.sku, l.expiresAt, JSON.stringify(l.serialNumbers), clock.now()],
        );
        // Expiry changes eligibility at every site holding the lot.
        for (const siteId of await openSites(tx, l.lotId)) await publishEligibility(tx, siteId, l.lotId);
      });
      return l;
    },

    getLot: (lotId) => getLot(sql, lotId),

    async listLots(q) {
      const rows =
        q.sku === undefined
          ? await sql.all<LotRow>(`SELECT * FROM lot_lots ORDER BY lot_id`, [])
          : await sql.all<LotRow>(`SELECT * FROM lot_lots WHERE sku = ? ORDER BY lot_id`, [q.sku]);
      return rows.map(toLot);
    },

    async recordMovement(input) {
      const m = validatePayload("movement", input, "movement");
      const r = await write((tx) => insertMovements(tx, [m]));
      if (r.duplicates > 0) log.debug({ movementId: m.movementId }, "duplicate movement ignored");
      return { duplicate: r.inserted === 0 };
    },

    async recordMovements(input, onProgress) {
      const ms = input.map((m, i) => validatePayload("movement", m, `movements[${i}]`));
      return write((tx) => insertMovements(tx, ms, onProgress));
    },

    async importCsv(text, opts) {
      return service.importMovements(readMovementsCsv(text, opts));
    },

    async importMovements(parsed) {
      const errors = [...parsed.errors];
      if (errors.length === 0) {
        // A movementId already recorded with different content is an error, not a duplicate.
        for (const { row, m } of parsed.movements) {
          const [prev] = await sql.all<
            MovementRow & { sku: string; reference: string | null; actor: string | null }
          >(`SELECT * FROM lot_movements WHERE movement_id = ?`, [m.movementId]);
          if (
            prev &&
            (prev.kind !== m.kind ||
              prev.site_id !== m.siteId ||
              Number(prev.occurred_at) !== m.occurredAt ||
              prev.lot_id !== m.lotId ||
              Number(prev.quantity) !== m.quantity ||
              prev.from_unit_id !== (m.fromUnitId ?? null) ||
              prev.to_unit_id !== (m.toUnitId ?? null))
          ) {
            errors.push({
              row,
              column: "movementId",
              message: "was already imported with different content",
              value: m.movementId,
            });
          }
        }
      }
      if (errors.length > 0) {
        log.warn({ rows: parsed.rows, errors: errors.length }, "movements import rejected");
        return { ok: false, rows: parsed.rows, imported: 0, duplicates: 0, errors };
      }
      const r = await write((tx) =>
        insertMovements(
          tx,
          parsed.movements.map((x) => x.m),
        ),
      );
      log.info({ rows: parsed.rows, imported: r.inserted }, "movements imported");
      return {
        ok: true,
        rows: parsed.rows,
        imported: r.inserted,
        duplicates: parsed.rows - r.inserted,
        errors: [],
      };
    },

    async onExcursion(e) {
      await correlate({
        cause: "excursion",
        causeId: e.excursionId,
        unitId: e.unitId,
        from: e.startedAt,
        to: e.endedAt ?? Math.max(e.at, e.startedAt),
        side: e.side,
        tier: e.tier,
      });
    },

    async onRecordingGap(g) {
      await correlate({ cause: "gap", causeId: g.gapId, unitId: g.unitId, from: g.from, to: g.to });
    },

    async release(d) {
      return decideState(parse(decisionSchema, "release", d), "released");
    },

    async reject(input) {
      const d = parse(rejectDecision, "reject", input);
      return decideState(d, d.returnToSupplier ? "returned_to_supplier" : "rejected");
    },

    async eligibility(input) {
      const q = parse(eligibilityQuery, "eligibility", input);
      let pairs: Array<{ site_id: string; lot_id: string }>;
      if (q.siteId !== undefined && q.lotId !== undefined) {
        pairs = [{ site_id: q.siteId, lot_id: q.lotId }];
      } else if (q.lotId !== undefined) {
        pairs = await sql.all(
          `SELECT DISTINCT site_id, lot_id FROM lot_occupancy WHERE lot_id = ? AND to_at = ?
           UNION SELECT site_id, lot_id FROM lot_site_state WHERE lot_id = ? ORDER BY site_id`,
          [q.lotId, OPEN_END, q.lotId],
        );
      } else {
        return eligibilityForSite(sql, q.siteId ?? "");
      }
      const out: Eligibility[] = [];
      for (const p of pairs) out.push(await eligibilityOf(sql, p.site_id, p.lot_id));
      return out;
    },

    async checkTransfer(input) {
      const q = parse(transferCheck, "transfer", input);
      const reasons: string[] = [];
      const [holding] = await sql.all<{ site_id: string; quantity: number }>(
        `SELECT site_id, SUM(quantity) AS quantity FROM lot_occupancy WHERE lot_id = ? AND unit_id = ? AND to_at = ? GROUP BY site_id`,
        [q.lotId, q.fromUnitId, OPEN_END],
      );
      if (!holding) {
        return { allow: false, reasons: [`lot ${q.lotId} is not in ${q.fromUnitId}`] };
      }
      const e = await eligibilityOf(sql, holding.site_id, q.lotId);
      if (!e.eligible) reasons.push(...(e.reasons.length > 0 ? e.reasons : [`lot is ${e.status}`]));
      const available = Math.min(Number(holding.quantity), e.transferableQuantity);
      if (e.eligible && q.quantity > available) {
        reasons.push(`only ${available} transferable in ${q.fromUnitId}, asked for ${q.quantity}`);
      }
      const now = clock.now();
      if (e.expiresAt !== null && e.expiresAt <= now + q.expectedTransitMinutes * 60_000) {
        if (e.eligible)
          reasons.push(`expires at ${new Date(e.expiresAt).toISOString()}, before the transfer arrives`);
      }
      const worst = worstCaseExposureMinutes(q.boxClass, q.expectedTransitMinutes);
      for (const side of ["high", "low"] as const) {
        const left = e.remainingBudgetMinutes[side];
        if (left !== null && left < worst) {
          reasons.push(
            `remaining ${side} budget ${left} min is below the route's worst-case exposure ${worst} min (${q.boxClass}, ${q.expectedTransitMinutes} min)`,
          );
        }
      }
      return { allow: reasons.length === 0, reasons };
    },

    async occupancy(unitId, at) {
      const rows = await sql.all<{ lot_id: string; site_id: string; quantity: number }>(
        `SELECT lot_id, site_id, quantity FROM lot_occupancy WHERE unit_id = ? AND to_at > ? AND from_at <= ? ORDER BY lot_id`,
        [unitId, at, at],
      );
      return rows.map((r) => ({ lotId: r.lot_id, siteId: r.site_id, quantity: Number(r.quantity) }));
    },

    async sweepExpired() {
      const now = clock.now();
      const since = lastSweep;
      const pairs = await sql.all<{ site_id: string; lot_id: string }>(
        `SELECT DISTINCT o.site_id, o.lot_id FROM lot_lots l JOIN lot_occupancy o ON o.lot_id = l.lot_id
         WHERE l.expires_at > ? AND l.expires_at <= ? AND o.to_at = ? ORDER BY o.site_id, o.lot_id`,
        [since, now, OPEN_END],
      );
      if (pairs.length > 0) {
        await write(async (tx) => {
          for (const p of pairs) await publishEligibility(tx, p.site_id, p.lot_id);
        });
        log.info({ count: pairs.length }, "expired lots published as ineligible");
      }
      lastSweep = now;
      return pairs.length;
    },

    occupancyIntervals: (unitId, from, to) => intervalsIn(sql, unitId, from, to),
    lotsInWindow: (unitId, from, to) => intervalsIn(sql, unitId, from, to),

    async exposures(lotId) {
      const rows = await sql.all<Record<string, unknown>>(
        `SELECT * FROM lot_exposures WHERE lot_id = ? ORDER BY from_at, cause_id, unit_id`,
        [lotId],
      );
      const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
      return rows.map((r) => ({
        causeId: String(r.cause_id),
        cause: r.cause as "excursion" | "gap",
        lotId: String(r.lot_id),
        unitId: String(r.unit_id),
        siteId: String(r.site_id),
        from: Number(r.from_at),
        to: Number(r.to_at),
        quantity: Number(r.quantity),
        side: (r.side as string | null) ?? null,
        tier: (r.tier as string | null) ?? null,
        minutesAbove: Number(r.minutes_above),
        minutesBelow: Number(r.minutes_below),
        peakC: num(r.peak_c),
        troughC: num(r.trough_c),
        mktC: num(r.mkt_c),
        coveredMs: Number(r.covered_ms),
        uncoveredMs: Number(r.uncovered_ms),
      }));
    },

    async holds(q) {
      const where: string[] = [];
      const params: string[] = [];
      if (q.lotId !== undefined) {
        where.push("lot_id = ?");
        params.push(q.lotId);
      }
      if (q.siteId !== undefined) {
        where.push("site_id = ?");
        params.push(q.siteId);
      }
      const rows = await sql.all<HoldRow>(
        `SELECT * FROM lot_holds ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at, hold_id`,
        params,
      );
      return rows.map(toHold);
    },
  };
  return service;
}
