/**
 * LotStore: every SQL statement of the lots module, and nothing else — no rules, no events.
 * One store is bound to one executor (the database, or the transaction a use case runs in), so
 * what a use case reads and writes through it commits or rolls back together. The statements
 * run unchanged on SQLite and PostgreSQL (the SQL seam turns `?` into `$n`); the contract suite
 * (gateway/test/lots/store.contract.ts) runs every method on both.
 *
 *   lot_products    product master by SKU                lot_lots        lot master
 *   lot_movements   every movement once, as received     lot_occupancy   ledger intervals
 *   lot_causes      excursions and recording gaps the module has seen (open, closed, withdrawn)
 *   lot_exposures   per cause, lot, unit and interval    lot_budget      minutes used per site
 *   lot_holds       quarantine/flag per cause, lot, unit lot_site_state  status, lotSeq, published
 */
import type { Movement } from "@coldtrace/protocol";
import type { SqlExecutor } from "../storage/sql/database.ts";
import { type LedgerMovement, type OccupancyInterval, OPEN_END } from "./ledger.ts";
import type { Lot, Product } from "./model.ts";

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

/** Where a hold stands: held (quarantined, flagged), decided by QA, or lifted by the gateway. */
export type HoldStatus =
  | "quarantined"
  | "flagged"
  | "released"
  | "rejected"
  | "returned_to_supplier"
  | "lifted";

export interface LotHold {
  holdId: string;
  siteId: string;
  lotId: string;
  unitId: string;
  causeId: string;
  quantity: number;
  status: HoldStatus;
  reason: string;
  createdAt: number;
  decidedBy: string | null;
  decidedReason: string | null;
  decidedAt: number | null;
}

/** An excursion or recording gap in one unit, as the lots module knows it. */
export interface LotCause {
  causeId: string;
  cause: "excursion" | "gap";
  siteId: string;
  unitId: string;
  from: number;
  /** null while the excursion is open. */
  to: number | null;
  /** Event time the cause is known up to (an open excursion's last update). */
  lastAt: number;
  side: "high" | "low" | null;
  tier: "alert" | "action" | null;
  /** Set once late data withdrew the cause (D3): `superseded` or `retracted`. */
  withdrawnReason: string | null;
  supersededBy: string | null;
}

/** A movement as stored, with the fields that make its content. */
export type StoredMovement = LedgerMovement & Pick<Movement, "sku" | "reference" | "actor">;

export interface SiteState {
  status: string;
  lotSeq: number;
  eligVersion: number;
  published: string | null;
}

export interface SiteLot {
  siteId: string;
  lotId: string;
}

const ACTIVE = "('quarantined', 'flagged')";

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
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function toProduct(r: ProductRow): Product {
  return {
    sku: r.sku,
    name: r.name,
    storageClass: r.storage_class as Product["storageClass"],
    lowC: num(r.low_c),
    highC: num(r.high_c),
    budgetMinutes: { high: num(r.budget_high), low: num(r.budget_low) },
    absoluteMinC: num(r.absolute_min_c),
    absoluteMaxC: num(r.absolute_max_c),
    doNotFreeze: Number(r.do_not_freeze) === 1,
  };
}

interface LotRow {
  lot_id: string;
  sku: string;
  expires_at: number | null;
  serials: string;
}
function toLot(r: LotRow): Lot {
  return {
    lotId: r.lot_id,
    sku: r.sku,
    expiresAt: num(r.expires_at),
    serialNumbers: JSON.parse(r.serials) as string[],
  };
}

interface MovementRow {
  movement_id: string;
  kind: string;
  site_id: string;
  occurred_at: number;
  lot_id: string;
  sku: string;
  quantity: number;
  from_unit_id: string | null;
  to_unit_id: string | null;
  reference: string | null;
  actor: string | null;
}
function toMovement(r: MovementRow): StoredMovement {
  return {
    movementId: r.movement_id,
    kind: r.kind as Movement["kind"],
    siteId: r.site_id,
    occurredAt: Number(r.occurred_at),
    lotId: r.lot_id,
    sku: r.sku,
    quantity: Number(r.quantity),
    ...(r.from_unit_id !== null ? { fromUnitId: r.from_unit_id } : {}),
    ...(r.to_unit_id !== null ? { toUnitId: r.to_unit_id } : {}),
    ...(r.reference !== null ? { reference: r.reference } : {}),
    ...(r.actor !== null ? { actor: r.actor } : {}),
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
    status: r.status as HoldStatus,
    reason: r.reason,
    createdAt: Number(r.created_at),
    decidedBy: r.decided_by,
    decidedReason: r.decided_reason,
    decidedAt: num(r.decided_at),
  };
}

interface ExposureRow {
  cause_id: string;
  cause: string;
  lot_id: string;
  unit_id: string;
  site_id: string;
  from_at: number;
  to_at: number;
  quantity: number;
  side: string | null;
  tier: string | null;
  minutes_above: number;
  minutes_below: number;
  peak_c: number | null;
  trough_c: number | null;
  mkt_c: number | null;
  covered_ms: number;
  uncovered_ms: number;
}
function toExposure(r: ExposureRow): LotExposure {
  return {
    causeId: r.cause_id,
    cause: r.cause as LotExposure["cause"],
    lotId: r.lot_id,
    unitId: r.unit_id,
    siteId: r.site_id,
    from: Number(r.from_at),
    to: Number(r.to_at),
    quantity: Number(r.quantity),
    side: r.side ?? null,
    tier: r.tier ?? null,
    minutesAbove: Number(r.minutes_above),
    minutesBelow: Number(r.minutes_below),
    peakC: num(r.peak_c),
    troughC: num(r.trough_c),
    mktC: num(r.mkt_c),
    coveredMs: Number(r.covered_ms),
    uncoveredMs: Number(r.uncovered_ms),
  };
}

interface CauseRow {
  cause_id: string;
  cause: string;
  site_id: string;
  unit_id: string;
  from_at: number;
  to_at: number | null;
  last_at: number;
  side: string | null;
  tier: string | null;
  withdrawn_reason: string | null;
  superseded_by: string | null;
}
function toCause(r: CauseRow): LotCause {
  return {
    causeId: r.cause_id,
    cause: r.cause as LotCause["cause"],
    siteId: r.site_id,
    unitId: r.unit_id,
    from: Number(r.from_at),
    to: num(r.to_at),
    lastAt: Number(r.last_at),
    side: (r.side as LotCause["side"]) ?? null,
    tier: (r.tier as LotCause["tier"]) ?? null,
    withdrawnReason: r.withdrawn_reason,
    supersededBy: r.superseded_by,
  };
}

const toOccupancy = (r: {
  lot_id: string;
  site_id: string;
  quantity: number;
  from_at: number;
  to_at: number;
}): OccupancyRow => ({
  lotId: r.lot_id,
  siteId: r.site_id,
  quantity: Number(r.quantity),
  from: Number(r.from_at),
  to: Number(r.to_at) === OPEN_END ? null : Number(r.to_at),
});

/** Group rows into a Map of lists by a key. */
function groupBy<T>(rows: readonly T[], key: (r: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const r of rows) {
    const k = key(r);
    const list = out.get(k);
    if (list) list.push(r);
    else out.set(k, [r]);
  }
  return out;
}

export class LotStore {
  readonly #ex: SqlExecutor;

  constructor(ex: SqlExecutor) {
    this.#ex = ex;
  }

  get executor(): SqlExecutor {
    return this.#ex;
  }

  // ── products and lots ─────────────────────────────────────────────────────────────────────

  async upsertProduct(p: Product, at: number): Promise<void> {
    await this.#ex.run(
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
        at,
      ],
    );
  }

  async product(sku: string): Promise<Product | undefined> {
    const [r] = await this.#ex.all<ProductRow>(`SELECT * FROM lot_products WHERE sku = ?`, [sku]);
    return r ? toProduct(r) : undefined;
  }

  /** Products by SKU, ordered by SKU; `after` and `limit` page through them. */
  async products(q: { after?: string; limit?: number } = {}): Promise<Product[]> {
    const rows = await this.#ex.all<ProductRow>(
      `SELECT * FROM lot_products WHERE sku > ? ORDER BY sku LIMIT ?`,
      [q.after ?? "", q.limit ?? 1_000_000],
    );
    return rows.map(toProduct);
  }

  async upsertLot(l: Lot, at: number): Promise<void> {
    await this.#ex.run(
      `INSERT INTO lot_lots (lot_id, sku, expires_at, serials, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (lot_id) DO UPDATE SET sku = excluded.sku, expires_at = excluded.expires_at, serials = excluded.serials, updated_at = excluded.updated_at`,
      [l.lotId, l.sku, l.expiresAt, JSON.stringify(l.serialNumbers), at],
    );
  }

  /** A lot first seen in a movement: its SKU, no expiry, no serials. */
  async ensureLot(lotId: string, sku: string, at: number): Promise<void> {
    await this.#ex.run(
      `INSERT INTO lot_lots (lot_id, sku, expires_at, serials, updated_at) VALUES (?, ?, NULL, '[]', ?)
       ON CONFLICT (lot_id) DO NOTHING`,
      [lotId, sku, at],
    );
  }

  async lot(lotId: string): Promise<Lot | undefined> {
    const [r] = await this.#ex.all<LotRow>(`SELECT * FROM lot_lots WHERE lot_id = ?`, [lotId]);
    return r ? toLot(r) : undefined;
  }

  /** Lots by lot number; `sku` filters, `after` and `limit` page. */
  async lots(q: { sku?: string; after?: string; limit?: number } = {}): Promise<Lot[]> {
    const rows = await this.#ex.all<LotRow>(
      `SELECT * FROM lot_lots WHERE lot_id > ? ${q.sku === undefined ? "" : "AND sku = ?"} ORDER BY lot_id LIMIT ?`,
      [q.after ?? "", ...(q.sku === undefined ? [] : [q.sku]), q.limit ?? 1_000_000],
    );
    return rows.map(toLot);
  }

  /** Lots with stock or a state at the site. */
  async lotsAtSite(siteId: string): Promise<Map<string, Lot>> {
    const rows = await this.#ex.all<LotRow>(
      `SELECT lot_id, sku, expires_at, serials FROM lot_lots WHERE lot_id IN (
         SELECT lot_id FROM lot_occupancy WHERE site_id = ? AND to_at = ? UNION SELECT lot_id FROM lot_site_state WHERE site_id = ?)`,
      [siteId, OPEN_END, siteId],
    );
    return new Map(rows.map((r) => [r.lot_id, toLot(r)]));
  }

  /** Site and lot of stock whose lot expired in (since, now]. */
  async expiredWithStock(since: number, now: number): Promise<SiteLot[]> {
    const rows = await this.#ex.all<{ site_id: string; lot_id: string }>(
      `SELECT DISTINCT o.site_id, o.lot_id FROM lot_lots l JOIN lot_occupancy o ON o.lot_id = l.lot_id
       WHERE l.expires_at > ? AND l.expires_at <= ? AND o.to_at = ? ORDER BY o.site_id, o.lot_id`,
      [since, now, OPEN_END],
    );
    return rows.map((r) => ({ siteId: r.site_id, lotId: r.lot_id }));
  }

  // ── movements and the ledger ──────────────────────────────────────────────────────────────

  /** Record a movement; false when its movementId is already recorded. */
  async insertMovement(m: Movement, at: number): Promise<boolean> {
    const changes = await this.#ex.run(
      `INSERT INTO lot_movements
        (movement_id, kind, site_id, occurred_at, lot_id, sku, quantity, from_unit_id, to_unit_id, reference, actor, recorded_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (movement_id) DO NOTHING`,
      [
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
        at,
      ],
    );
    return changes > 0;
  }

  async movement(movementId: string): Promise<StoredMovement | undefined> {
    const [r] = await this.#ex.all<MovementRow>(`SELECT * FROM lot_movements WHERE movement_id = ?`, [
      movementId,
    ]);
    return r ? toMovement(r) : undefined;
  }

  /** The recorded movements among these ids, by id (one query per 500 ids). */
  async movementsById(ids: readonly string[]): Promise<Map<string, StoredMovement>> {
    const out = new Map<string, StoredMovement>();
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const rows = await this.#ex.all<MovementRow>(
        `SELECT * FROM lot_movements WHERE movement_id IN (${chunk.map(() => "?").join(",")})`,
        chunk,
      );
      for (const r of rows) out.set(r.movement_id, toMovement(r));
    }
    return out;
  }

  async movementsOf(lotId: string): Promise<StoredMovement[]> {
    return (await this.#ex.all<MovementRow>(`SELECT * FROM lot_movements WHERE lot_id = ?`, [lotId])).map(
      toMovement,
    );
  }

  /** Replace a lot's ledger with these intervals. */
  async replaceOccupancy(lotId: string, intervals: readonly OccupancyInterval[]): Promise<void> {
    await this.#ex.run(`DELETE FROM lot_occupancy WHERE lot_id = ?`, [lotId]);
    for (const iv of intervals) {
      await this.#ex.run(
        `INSERT INTO lot_occupancy (lot_id, unit_id, site_id, quantity, from_at, to_at) VALUES (?, ?, ?, ?, ?, ?)`,
        [iv.lotId, iv.unitId, iv.siteId, iv.quantity, iv.from, iv.to],
      );
    }
  }

  /**
   * Intervals of lots in a unit overlapping [from, to]; a zero-length window (an excursion just
   * opened) selects what is inside at that instant.
   */
  async intervalsIn(unitId: string, from: number, to: number): Promise<OccupancyRow[]> {
    const rows = await this.#ex.all<{
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
    return rows.map(toOccupancy);
  }

  /** One lot's intervals in one unit. */
  async intervalsOf(lotId: string, unitId: string): Promise<OccupancyRow[]> {
    const rows = await this.#ex.all<{
      lot_id: string;
      site_id: string;
      quantity: number;
      from_at: number;
      to_at: number;
    }>(
      `SELECT lot_id, site_id, quantity, from_at, to_at FROM lot_occupancy WHERE lot_id = ? AND unit_id = ? ORDER BY from_at`,
      [lotId, unitId],
    );
    return rows.map(toOccupancy);
  }

  /** What is inside a unit at a moment. */
  async occupantsAt(
    unitId: string,
    at: number,
  ): Promise<Array<{ lotId: string; siteId: string; quantity: number }>> {
    const rows = await this.#ex.all<{ lot_id: string; site_id: string; quantity: number }>(
      `SELECT lot_id, site_id, quantity FROM lot_occupancy WHERE unit_id = ? AND to_at > ? AND from_at <= ? ORDER BY lot_id`,
      [unitId, at, at],
    );
    return rows.map((r) => ({ lotId: r.lot_id, siteId: r.site_id, quantity: Number(r.quantity) }));
  }

  /** Where a lot's stock is now: unit, site, quantity. */
  async holdingsOf(lotId: string): Promise<Array<{ unitId: string; siteId: string; quantity: number }>> {
    const rows = await this.#ex.all<{ unit_id: string; site_id: string; quantity: number }>(
      `SELECT unit_id, site_id, quantity FROM lot_occupancy WHERE lot_id = ? AND to_at = ? ORDER BY unit_id`,
      [lotId, OPEN_END],
    );
    return rows.map((r) => ({ unitId: r.unit_id, siteId: r.site_id, quantity: Number(r.quantity) }));
  }

  /** Sites where the lot has stock now. */
  async openSites(lotId: string): Promise<string[]> {
    const rows = await this.#ex.all<{ site_id: string }>(
      `SELECT DISTINCT site_id FROM lot_occupancy WHERE lot_id = ? AND to_at = ?`,
      [lotId, OPEN_END],
    );
    return rows.map((r) => r.site_id);
  }

  /** Stock of the lot at the site now. */
  async stock(siteId: string, lotId: string): Promise<number> {
    const [r] = await this.#ex.all<{ n: number | null }>(
      `SELECT SUM(quantity) AS n FROM lot_occupancy WHERE lot_id = ? AND site_id = ? AND to_at = ?`,
      [lotId, siteId, OPEN_END],
    );
    return Number(r?.n ?? 0);
  }

  /** Stock per lot at the site now. */
  async stockAtSite(siteId: string): Promise<Map<string, number>> {
    const rows = await this.#ex.all<{ lot_id: string; n: number }>(
      `SELECT lot_id, SUM(quantity) AS n FROM lot_occupancy WHERE site_id = ? AND to_at = ? GROUP BY lot_id`,
      [siteId, OPEN_END],
    );
    return new Map(rows.map((r) => [r.lot_id, Number(r.n)]));
  }

  /** The site holding the lot in this unit now, with the quantity there. */
  async holdingIn(lotId: string, unitId: string): Promise<{ siteId: string; quantity: number } | undefined> {
    const [r] = await this.#ex.all<{ site_id: string; quantity: number }>(
      `SELECT site_id, SUM(quantity) AS quantity FROM lot_occupancy WHERE lot_id = ? AND unit_id = ? AND to_at = ? GROUP BY site_id`,
      [lotId, unitId, OPEN_END],
    );
    return r ? { siteId: r.site_id, quantity: Number(r.quantity) } : undefined;
  }

  /** Sites where the lot has stock or a state. */
  async sitesOf(lotId: string): Promise<string[]> {
    const rows = await this.#ex.all<{ site_id: string }>(
      `SELECT DISTINCT site_id FROM lot_occupancy WHERE lot_id = ? AND to_at = ?
       UNION SELECT site_id FROM lot_site_state WHERE lot_id = ? ORDER BY site_id`,
      [lotId, OPEN_END, lotId],
    );
    return rows.map((r) => r.site_id);
  }

  // ── causes ────────────────────────────────────────────────────────────────────────────────

  /** Record what is known of a cause in a unit (a later event of the same cause replaces it). */
  async upsertCause(c: LotCause, at: number): Promise<void> {
    await this.#ex.run(
      `INSERT INTO lot_causes (cause_id, unit_id, cause, site_id, from_at, to_at, last_at, side, tier, withdrawn_reason, superseded_by, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (cause_id, unit_id) DO UPDATE SET cause = excluded.cause, site_id = excluded.site_id,
         from_at = excluded.from_at, to_at = excluded.to_at, last_at = excluded.last_at, side = excluded.side,
         tier = excluded.tier, withdrawn_reason = excluded.withdrawn_reason, superseded_by = excluded.superseded_by,
         updated_at = excluded.updated_at`,
      [
        c.causeId,
        c.unitId,
        c.cause,
        c.siteId,
        c.from,
        c.to,
        c.lastAt,
        c.side,
        c.tier,
        c.withdrawnReason,
        c.supersededBy,
        at,
      ],
    );
  }

  async causesOf(causeId: string): Promise<LotCause[]> {
    const rows = await this.#ex.all<CauseRow>(
      `SELECT * FROM lot_causes WHERE cause_id = ? ORDER BY unit_id`,
      [causeId],
    );
    return rows.map(toCause);
  }

  /**
   * Causes in force (not withdrawn) in these units: closed ones and those still open; `since`:
   * only those still open or ending at or after it; `openOnly`: only open ones.
   */
  async causesIn(
    unitIds: readonly string[],
    opts: { since?: number; openOnly?: boolean } = {},
  ): Promise<LotCause[]> {
    if (unitIds.length === 0) return [];
    const window = opts.openOnly
      ? " AND to_at IS NULL"
      : opts.since !== undefined
        ? " AND (to_at IS NULL OR to_at >= ?)"
        : "";
    const rows = await this.#ex.all<CauseRow>(
      `SELECT * FROM lot_causes WHERE unit_id IN (${unitIds.map(() => "?").join(",")}) AND withdrawn_reason IS NULL${window}
       ORDER BY from_at, cause_id, unit_id`,
      [...unitIds, ...(!opts.openOnly && opts.since !== undefined ? [opts.since] : [])],
    );
    return rows.map(toCause);
  }

  // ── exposures and budgets ─────────────────────────────────────────────────────────────────

  /** Replace the exposures of one cause for one lot. */
  async replaceExposures(causeId: string, lotId: string, exposures: readonly LotExposure[]): Promise<void> {
    await this.#ex.run(`DELETE FROM lot_exposures WHERE cause_id = ? AND lot_id = ?`, [causeId, lotId]);
    for (const e of exposures) {
      await this.#ex.run(
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
  }

  /** Delete every exposure of a cause; returns the lots that had one. */
  async deleteExposuresOf(causeId: string): Promise<string[]> {
    const lots = await this.#ex.all<{ lot_id: string }>(
      `SELECT DISTINCT lot_id FROM lot_exposures WHERE cause_id = ? ORDER BY lot_id`,
      [causeId],
    );
    await this.#ex.run(`DELETE FROM lot_exposures WHERE cause_id = ?`, [causeId]);
    return lots.map((r) => r.lot_id);
  }

  async exposuresOf(lotId: string): Promise<LotExposure[]> {
    const rows = await this.#ex.all<ExposureRow>(
      `SELECT * FROM lot_exposures WHERE lot_id = ? ORDER BY from_at, cause_id, unit_id`,
      [lotId],
    );
    return rows.map(toExposure);
  }

  /** Replace the lot's budget rows; returns the sites that had one before. */
  async replaceBudget(
    lotId: string,
    perSite: ReadonlyMap<string, { high: number; low: number }>,
  ): Promise<string[]> {
    const before = await this.#ex.all<{ site_id: string }>(
      `SELECT site_id FROM lot_budget WHERE lot_id = ?`,
      [lotId],
    );
    await this.#ex.run(`DELETE FROM lot_budget WHERE lot_id = ?`, [lotId]);
    for (const [siteId, used] of perSite) {
      await this.#ex.run(
        `INSERT INTO lot_budget (site_id, lot_id, used_high, used_low) VALUES (?, ?, ?, ?)`,
        [siteId, lotId, used.high, used.low],
      );
    }
    return before.map((r) => r.site_id);
  }

  /** Budget minutes used by the lot's stock at the site. */
  async budgetUsed(siteId: string, lotId: string): Promise<{ high: number; low: number } | undefined> {
    const [r] = await this.#ex.all<{ used_high: number; used_low: number }>(
      `SELECT used_high, used_low FROM lot_budget WHERE site_id = ? AND lot_id = ?`,
      [siteId, lotId],
    );
    return r ? { high: Number(r.used_high), low: Number(r.used_low) } : undefined;
  }

  async budgetsAtSite(siteId: string): Promise<Map<string, { high: number; low: number }>> {
    const rows = await this.#ex.all<{ lot_id: string; used_high: number; used_low: number }>(
      `SELECT lot_id, used_high, used_low FROM lot_budget WHERE site_id = ?`,
      [siteId],
    );
    return new Map(rows.map((r) => [r.lot_id, { high: Number(r.used_high), low: Number(r.used_low) }]));
  }

  // ── holds ─────────────────────────────────────────────────────────────────────────────────

  async hold(holdId: string): Promise<LotHold | undefined> {
    const [r] = await this.#ex.all<HoldRow>(`SELECT * FROM lot_holds WHERE hold_id = ?`, [holdId]);
    return r ? toHold(r) : undefined;
  }

  async insertHold(h: Omit<LotHold, "decidedBy" | "decidedReason" | "decidedAt">): Promise<void> {
    await this.#ex.run(
      `INSERT INTO lot_holds (hold_id, site_id, lot_id, unit_id, cause_id, quantity, status, reason, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [h.holdId, h.siteId, h.lotId, h.unitId, h.causeId, h.quantity, h.status, h.reason, h.createdAt],
    );
  }

  async updateHold(
    holdId: string,
    h: { status: HoldStatus; reason: string; quantity: number },
  ): Promise<void> {
    await this.#ex.run(`UPDATE lot_holds SET status = ?, reason = ?, quantity = ? WHERE hold_id = ?`, [
      h.status,
      h.reason,
      h.quantity,
      holdId,
    ]);
  }

  /** A lifted hold whose cause came back (late data decided it again): held again, undecided. */
  async reopenHold(
    holdId: string,
    h: { status: HoldStatus; reason: string; quantity: number },
  ): Promise<void> {
    await this.#ex.run(
      `UPDATE lot_holds SET status = ?, reason = ?, quantity = ?, decided_by = NULL, decided_reason = NULL, decided_at = NULL
       WHERE hold_id = ? AND status = 'lifted'`,
      [h.status, h.reason, h.quantity, holdId],
    );
  }

  /** Active (quarantined, flagged) holds, by site and lot, oldest first. */
  async activeHolds(q: { siteId?: string; lotId?: string; causeId?: string }): Promise<LotHold[]> {
    const where: string[] = [`status IN ${ACTIVE}`];
    const params: string[] = [];
    for (const [col, v] of [
      ["site_id", q.siteId],
      ["lot_id", q.lotId],
      ["cause_id", q.causeId],
    ] as const) {
      if (v === undefined) continue;
      where.push(`${col} = ?`);
      params.push(v);
    }
    const rows = await this.#ex.all<HoldRow>(
      `SELECT * FROM lot_holds WHERE ${where.join(" AND ")} ORDER BY created_at, hold_id`,
      params,
    );
    return rows.map(toHold);
  }

  /** Active holds of every lot at a site, by lot. */
  async activeHoldsAtSite(siteId: string): Promise<Map<string, LotHold[]>> {
    return groupBy(await this.activeHolds({ siteId }), (h) => h.lotId);
  }

  /** Every hold (any status), by lot and/or site, oldest first. */
  async holds(q: { lotId?: string; siteId?: string }): Promise<LotHold[]> {
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
    const rows = await this.#ex.all<HoldRow>(
      `SELECT * FROM lot_holds ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at, hold_id`,
      params,
    );
    return rows.map(toHold);
  }

  /** End the active holds of a lot at a site with a decision (QA's, or the gateway's own lift). */
  async decideHolds(
    q: { siteId: string; lotId: string; holdIds?: readonly string[] },
    d: { status: HoldStatus; by: string; reason: string; at: number },
  ): Promise<number> {
    const ids = q.holdIds;
    if (ids !== undefined && ids.length === 0) return 0;
    return this.#ex.run(
      `UPDATE lot_holds SET status = ?, decided_by = ?, decided_reason = ?, decided_at = ?
       WHERE site_id = ? AND lot_id = ? AND status IN ${ACTIVE}${ids ? ` AND hold_id IN (${ids.map(() => "?").join(",")})` : ""}`,
      [d.status, d.by, d.reason.slice(0, 500), d.at, q.siteId, q.lotId, ...(ids ?? [])],
    );
  }

  // ── per-site state: decided status, lotSeq, what was last published ─────────────────────

  async siteState(siteId: string, lotId: string): Promise<SiteState | undefined> {
    const [r] = await this.#ex.all<{
      status: string;
      lot_seq: number;
      elig_version: number;
      published: string | null;
    }>(
      `SELECT status, lot_seq, elig_version, published FROM lot_site_state WHERE site_id = ? AND lot_id = ?`,
      [siteId, lotId],
    );
    return r
      ? {
          status: r.status,
          lotSeq: Number(r.lot_seq),
          eligVersion: Number(r.elig_version),
          published: r.published,
        }
      : undefined;
  }

  async siteStates(siteId: string): Promise<Map<string, SiteState>> {
    const rows = await this.#ex.all<{
      lot_id: string;
      status: string;
      lot_seq: number;
      elig_version: number;
      published: string | null;
    }>(`SELECT lot_id, status, lot_seq, elig_version, published FROM lot_site_state WHERE site_id = ?`, [
      siteId,
    ]);
    return new Map(
      rows.map((r) => [
        r.lot_id,
        {
          status: r.status,
          lotSeq: Number(r.lot_seq),
          eligVersion: Number(r.elig_version),
          published: r.published,
        },
      ]),
    );
  }

  /** Every site and lot whose eligibility was published, ordered (for the retained-state resync). */
  async publishedSiteLots(q: { after?: SiteLot; limit: number }): Promise<SiteLot[]> {
    const a = q.after ?? { siteId: "", lotId: "" };
    const rows = await this.#ex.all<{ site_id: string; lot_id: string }>(
      `SELECT site_id, lot_id FROM lot_site_state WHERE published IS NOT NULL
         AND (site_id > ? OR (site_id = ? AND lot_id > ?)) ORDER BY site_id, lot_id LIMIT ?`,
      [a.siteId, a.siteId, a.lotId, q.limit],
    );
    return rows.map((r) => ({ siteId: r.site_id, lotId: r.lot_id }));
  }

  async setStatus(siteId: string, lotId: string, status: string, at: number): Promise<void> {
    await this.#ex.run(
      `INSERT INTO lot_site_state (site_id, lot_id, status, lot_seq, elig_version, updated_at) VALUES (?, ?, ?, 0, 0, ?)
       ON CONFLICT (site_id, lot_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at`,
      [siteId, lotId, status, at],
    );
  }

  /** Next lotSeq of a lot at a site (1, 2, 3 …). */
  async nextLotSeq(siteId: string, lotId: string, at: number): Promise<number> {
    await this.#ex.run(
      `INSERT INTO lot_site_state (site_id, lot_id, status, lot_seq, elig_version, updated_at) VALUES (?, ?, 'available', 1, 0, ?)
       ON CONFLICT (site_id, lot_id) DO UPDATE SET lot_seq = lot_site_state.lot_seq + 1, updated_at = excluded.updated_at`,
      [siteId, lotId, at],
    );
    return (await this.siteState(siteId, lotId))?.lotSeq ?? 1;
  }

  /** Remember `content` as the published eligibility; returns the new eligibility version. */
  async markPublished(siteId: string, lotId: string, content: string, at: number): Promise<number> {
    await this.#ex.run(
      `INSERT INTO lot_site_state (site_id, lot_id, status, lot_seq, elig_version, updated_at, published) VALUES (?, ?, 'available', 0, 1, ?, ?)
       ON CONFLICT (site_id, lot_id) DO UPDATE SET elig_version = lot_site_state.elig_version + 1, published = excluded.published`,
      [siteId, lotId, at, content],
    );
    return (await this.siteState(siteId, lotId))?.eligVersion ?? 1;
  }
}
