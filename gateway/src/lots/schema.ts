/**
 * Tables of the lots service, the same DDL for SQLite and PostgreSQL (BIGINT times in epoch ms,
 * DOUBLE PRECISION minutes and °C). `lotsDdl` is version 1 of module "lots" in the migration
 * runner (storage/sql/migrate.ts); a schema change is a new script after it, never an edit. It
 * keeps `IF NOT EXISTS` because databases made before the runner took over already hold
 * these tables: on them version 1 changes nothing and is recorded.
 *
 *   lot_products    product master by SKU: storage class, range, stability budget, absolute limits
 *   lot_lots        lot master: SKU, expiry, serial numbers
 *   lot_movements   every movement once (movementId is the key), as received
 *   lot_occupancy   the ledger derived from movements: lot × unit × [from, to) × quantity
 *   lot_exposures   per excursion/gap, lot and unit: the lot's own exposure (minutes, peak, MKT)
 *   lot_budget      per site and lot: budget minutes used by the stock now at that site
 *   lot_holds       quarantine/flag per cause, lot and unit, with the QA decision
 *   lot_site_state  per site and lot: decided status, lotSeq, eligibility version
 *   lot_causes      (v3) excursions and recording gaps seen, per unit: window, open, withdrawn
 */
export const lotsDdl = `
CREATE TABLE IF NOT EXISTS lot_products (
  sku TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  storage_class TEXT NOT NULL,
  low_c DOUBLE PRECISION,
  high_c DOUBLE PRECISION,
  budget_high DOUBLE PRECISION,
  budget_low DOUBLE PRECISION,
  absolute_min_c DOUBLE PRECISION,
  absolute_max_c DOUBLE PRECISION,
  do_not_freeze INTEGER NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS lot_lots (
  lot_id TEXT PRIMARY KEY,
  sku TEXT NOT NULL,
  expires_at BIGINT,
  serials TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS lot_lots_expiry ON lot_lots (expires_at);
CREATE TABLE IF NOT EXISTS lot_movements (
  movement_id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  site_id TEXT NOT NULL,
  occurred_at BIGINT NOT NULL,
  lot_id TEXT NOT NULL,
  sku TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  from_unit_id TEXT,
  to_unit_id TEXT,
  reference TEXT,
  actor TEXT,
  recorded_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS lot_movements_lot ON lot_movements (lot_id, occurred_at);
CREATE TABLE IF NOT EXISTS lot_occupancy (
  lot_id TEXT NOT NULL,
  unit_id TEXT NOT NULL,
  site_id TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  from_at BIGINT NOT NULL,
  to_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS lot_occupancy_unit ON lot_occupancy (unit_id, to_at, from_at);
CREATE INDEX IF NOT EXISTS lot_occupancy_lot_site ON lot_occupancy (lot_id, site_id, to_at);
CREATE INDEX IF NOT EXISTS lot_occupancy_site ON lot_occupancy (site_id, to_at);
CREATE TABLE IF NOT EXISTS lot_exposures (
  cause_id TEXT NOT NULL,
  cause TEXT NOT NULL,
  lot_id TEXT NOT NULL,
  unit_id TEXT NOT NULL,
  site_id TEXT NOT NULL,
  from_at BIGINT NOT NULL,
  to_at BIGINT NOT NULL,
  quantity INTEGER NOT NULL,
  side TEXT,
  tier TEXT,
  minutes_above DOUBLE PRECISION NOT NULL,
  minutes_below DOUBLE PRECISION NOT NULL,
  peak_c DOUBLE PRECISION,
  trough_c DOUBLE PRECISION,
  mkt_c DOUBLE PRECISION,
  covered_ms BIGINT NOT NULL,
  uncovered_ms BIGINT NOT NULL,
  PRIMARY KEY (cause_id, lot_id, unit_id, from_at)
);
CREATE INDEX IF NOT EXISTS lot_exposures_lot ON lot_exposures (lot_id);
CREATE TABLE IF NOT EXISTS lot_budget (
  site_id TEXT NOT NULL,
  lot_id TEXT NOT NULL,
  used_high DOUBLE PRECISION NOT NULL,
  used_low DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (site_id, lot_id)
);
CREATE INDEX IF NOT EXISTS lot_budget_lot ON lot_budget (lot_id);
CREATE TABLE IF NOT EXISTS lot_holds (
  hold_id TEXT PRIMARY KEY,
  site_id TEXT NOT NULL,
  lot_id TEXT NOT NULL,
  unit_id TEXT NOT NULL,
  cause_id TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  status TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  decided_by TEXT,
  decided_reason TEXT,
  decided_at BIGINT
);
CREATE INDEX IF NOT EXISTS lot_holds_site_lot ON lot_holds (site_id, lot_id, status);
CREATE TABLE IF NOT EXISTS lot_site_state (
  site_id TEXT NOT NULL,
  lot_id TEXT NOT NULL,
  status TEXT NOT NULL,
  lot_seq INTEGER NOT NULL,
  elig_version INTEGER NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (site_id, lot_id)
);
CREATE INDEX IF NOT EXISTS lot_site_state_lot ON lot_site_state (lot_id);
`;

/**
 * Version 2 of module "lots": what was last published as each lot's retained eligibility at a
 * site (the state without updatedAt), so an unchanged state is not published again.
 */
export const lotsV2Published = `ALTER TABLE lot_site_state ADD COLUMN published TEXT;`;

/**
 * Version 3 of module "lots": the causes the module has seen (`lot_causes`), one row per
 * excursion or recording gap and unit: its window (open while `to_at` is null), how far it is
 * known (`last_at`), and whether late data withdrew it. A movement into a unit is checked against
 * them at once; a withdrawn cause's holds are lifted. Seeded from the exposures recorded so far.
 */
export const lotsV3Causes = `
CREATE TABLE IF NOT EXISTS lot_causes (
  cause_id TEXT NOT NULL,
  unit_id TEXT NOT NULL,
  cause TEXT NOT NULL,
  site_id TEXT NOT NULL,
  from_at BIGINT NOT NULL,
  to_at BIGINT,
  last_at BIGINT NOT NULL,
  side TEXT,
  tier TEXT,
  withdrawn_reason TEXT,
  superseded_by TEXT,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (cause_id, unit_id)
);
CREATE INDEX IF NOT EXISTS lot_causes_unit ON lot_causes (unit_id, from_at);
INSERT INTO lot_causes (cause_id, unit_id, cause, site_id, from_at, to_at, last_at, side, tier, updated_at)
  SELECT cause_id, unit_id, MIN(cause), MIN(site_id), MIN(from_at), MAX(to_at), MAX(to_at), MIN(side), MIN(tier), 0
  FROM lot_exposures GROUP BY cause_id, unit_id;
`;

/** Every migration of module "lots", in order. */
export const lotsMigrations = [lotsDdl, lotsV2Published, lotsV3Causes] as const;
