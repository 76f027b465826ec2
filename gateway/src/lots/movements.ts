/**
 * Movements: checked against what the gateway knows, then placed in each lot's ledger by event
 * time, all or nothing per call (REST, MQTT and CSV alike).
 *
 *   movements ─▶ check: same id with other content (CT_LOT_CONFLICT) · unknown unit or SKU ·
 *                       a SKU other than the lot's · a take-out the ledger does not hold (CT_LOT_INVALID)
 *             ─▶ lot_movements ─▶ each lot's ledger rebuilt (event-time order)
 *             ─▶ causes in force in the lot's units ─▶ exposure, budget, holds at once
 *                (a lot moved into a unit in excursion is held in this transaction)
 *             ─▶ held stock that moved keeps its hold ─▶ eligibility of every site touched
 *
 * The ledger check compares the lot's movements in event-time order with and without the new
 * ones: a take-out that arrives before the movement that brought the stock is refused (send the
 * earlier one first, or both in one call), as is one that takes more than the unit holds.
 */
import { ColdtraceError, type Movement } from "@coldtrace/protocol";
import { budgetUsedPerSite } from "./budget.ts";
import { Changes, type LotsContext } from "./context.ts";
import { exposuresOfLot, Products, readingsFor } from "./correlation.ts";
import { type LedgerMovement, ledgerViolations, lotIntervals, OPEN_END } from "./ledger.ts";
import { carryHolds, holdForExposures } from "./quarantine.ts";
import type { LotStore, OccupancyRow, StoredMovement } from "./store.ts";

/** One problem with one movement of a call. */
export interface MovementIssue {
  /** Index of the movement in the call. */
  index: number;
  /** The field at fault, e.g. `toUnitId`. */
  field: string;
  message: string;
  /** CT_LOT_CONFLICT: a movementId already recorded (or repeated) with other content. */
  conflict: boolean;
}

/** The content fields of a movement: the same movementId must always carry the same ones. */
const CONTENT = [
  "kind",
  "siteId",
  "occurredAt",
  "lotId",
  "sku",
  "quantity",
  "fromUnitId",
  "toUnitId",
] as const;

/** The content fields in which two movements with one movementId differ. */
export function differingFields(
  a: LedgerMovement & { sku?: string },
  b: LedgerMovement & { sku?: string },
): string[] {
  return CONTENT.filter((k) => (a[k] ?? null) !== (b[k] ?? null));
}

export interface CheckedMovements {
  issues: MovementIssue[];
  /** Movements not recorded before, by lot, with the lot's recorded movements. */
  byLot: Map<string, { recorded: StoredMovement[]; fresh: Movement[] }>;
  duplicates: number;
}

/** Check a call's movements against the records (reads only). */
export async function checkMovements(
  ctx: LotsContext,
  store: LotStore,
  ms: readonly Movement[],
): Promise<CheckedMovements> {
  const issues: MovementIssue[] = [];
  const issue = (index: number, field: string, message: string, conflict = false) =>
    issues.push({ index, field, message, conflict });
  const recorded = await store.movementsById([...new Set(ms.map((m) => m.movementId))]);
  const inCall = new Map<string, { index: number; m: Movement }>();
  const fresh: Array<{ index: number; m: Movement }> = [];
  let duplicates = 0;
  for (const [index, m] of ms.entries()) {
    const prev = recorded.get(m.movementId) ?? inCall.get(m.movementId)?.m;
    if (prev) {
      const diff = differingFields(prev, m);
      const was = prev as unknown as Record<string, unknown>;
      if (diff.length > 0) {
        issue(
          index,
          "movementId",
          `${m.movementId} was already recorded with other content (${diff.map((k) => `${k}: ${JSON.stringify(was[k] ?? null)}`).join(", ")}); a correction needs a new movementId`,
          true,
        );
      } else duplicates++;
      continue;
    }
    inCall.set(m.movementId, { index, m });
    fresh.push({ index, m });
  }
  const skus = new Map<string, boolean>();
  const lotSku = new Map<string, string | null>();
  for (const { index, m } of fresh) {
    for (const field of ["fromUnitId", "toUnitId"] as const) {
      const unitId = m[field];
      if (unitId !== undefined && !ctx.unit(unitId))
        issue(
          index,
          field,
          `unknown unit ${JSON.stringify(unitId)}: no agent has announced it (birth) to this gateway`,
        );
    }
    let known = skus.get(m.sku);
    if (known === undefined) {
      known = (await store.product(m.sku)) !== undefined;
      skus.set(m.sku, known);
    }
    if (!known)
      issue(
        index,
        "sku",
        `unknown SKU ${JSON.stringify(m.sku)}: add it to the product master first (PUT /lots/products)`,
      );
    let sku = lotSku.get(m.lotId);
    if (sku === undefined) {
      sku = (await store.lot(m.lotId))?.sku ?? null;
      lotSku.set(m.lotId, sku ?? m.sku);
    }
    if (sku !== null && sku !== m.sku)
      issue(
        index,
        "sku",
        `lot ${JSON.stringify(m.lotId)} is SKU ${JSON.stringify(sku)}, not ${JSON.stringify(m.sku)}`,
      );
  }
  // The ledger: a take-out must find the stock it takes, in event time, with the new movements in.
  const byLot = new Map<string, { recorded: StoredMovement[]; fresh: Movement[] }>();
  const indexOf = new Map(fresh.map(({ index, m }) => [m.movementId, index]));
  for (const { m } of fresh) {
    let entry = byLot.get(m.lotId);
    if (!entry) {
      entry = { recorded: await store.movementsOf(m.lotId), fresh: [] };
      byLot.set(m.lotId, entry);
    }
    entry.fresh.push(m);
  }
  for (const [lotId, { recorded: before, fresh: added }] of byLot) {
    const known = new Set(ledgerViolations(before).map((v) => v.movementId));
    for (const v of ledgerViolations([...before, ...added])) {
      if (known.has(v.movementId)) continue;
      const own = indexOf.get(v.movementId);
      const at = new Date(v.at).toISOString();
      if (own !== undefined) {
        issue(
          own,
          "quantity",
          `takes ${v.taken} of lot ${JSON.stringify(lotId)} out of ${v.unitId} at ${at}, where the ledger holds ${Math.max(0, v.held)} then`,
        );
      } else {
        // A recorded take-out no longer finds its stock: blame the new take-outs before it.
        const culprit = added.find((m) => m.fromUnitId === v.unitId && m.occurredAt <= v.at) ?? added[0];
        if (culprit)
          issue(
            indexOf.get(culprit.movementId) ?? 0,
            "quantity",
            `leaves ${v.unitId} holding ${Math.max(0, v.held)} of lot ${JSON.stringify(lotId)} at ${at}, less than the recorded movement ${v.movementId} takes then (${v.taken})`,
          );
      }
    }
  }
  return { issues: issues.sort((a, b) => a.index - b.index), byLot, duplicates };
}

/** CT_LOT_CONFLICT (any conflict) or CT_LOT_INVALID, listing every issue as `movements[i].field`. */
export function movementError(
  where: string,
  issues: readonly MovementIssue[],
  single: boolean,
): ColdtraceError {
  const listed = issues.map((i) => ({
    path: single ? i.field : `movements[${i.index}].${i.field}`,
    message: i.message,
  }));
  return new ColdtraceError(
    issues.some((i) => i.conflict) ? "CT_LOT_CONFLICT" : "CT_LOT_INVALID",
    `${where}: ${listed.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
    { where, issues: listed },
  );
}

const toRow = (iv: {
  lotId: string;
  siteId: string;
  quantity: number;
  from: number;
  to: number;
}): OccupancyRow => ({
  lotId: iv.lotId,
  siteId: iv.siteId,
  quantity: iv.quantity,
  from: iv.from,
  to: iv.to === OPEN_END ? null : iv.to,
});

/**
 * Record checked movements and bring every lot they touch up to date, through `store` (one
 * transaction). `onProgress` is told the movements and lots done, every 100,000 and 10,000.
 */
export async function applyMovements(
  ctx: LotsContext,
  store: LotStore,
  checked: CheckedMovements,
  onProgress?: (done: number) => void,
): Promise<number> {
  const now = ctx.clock.now();
  const changes = new Changes();
  const products = new Products(store);
  let inserted = 0;
  let total = 0;
  for (const { fresh } of checked.byLot.values()) total += fresh.length;
  for (const [lotId, { fresh }] of checked.byLot) {
    for (const m of fresh) {
      await store.insertMovement(m, now);
      changes.add(m.siteId, lotId);
      inserted++;
      if (onProgress && inserted % 100_000 === 0) onProgress(inserted);
    }
    await store.ensureLot(lotId, fresh[0]?.sku ?? "", now);
  }
  let n = 0;
  for (const [lotId, { recorded, fresh }] of checked.byLot) {
    const movements: LedgerMovement[] = [...recorded, ...fresh];
    changes.addSites(await store.openSites(lotId), lotId);
    const intervals = lotIntervals(movements);
    await store.replaceOccupancy(lotId, intervals);
    for (const iv of intervals) if (iv.to === OPEN_END) changes.add(iv.siteId, lotId);
    const rows = intervals.map((iv) => ({ ...toRow(iv), unitId: iv.unitId }));
    await bringUpToDate(ctx, store, lotId, rows, movements, products, changes);
    n++;
    if (onProgress && n % 10_000 === 0) onProgress(total + n);
  }
  await changes.publish(ctx, store);
  return inserted;
}

/**
 * After a lot's ledger changed: its exposure to every cause in force in its units (at once: a
 * lot moved into a unit in excursion is touched now, not at the next engine update), its budget,
 * holds for causes new to it, and active holds carried to where its stock went.
 */
async function bringUpToDate(
  ctx: LotsContext,
  store: LotStore,
  lotId: string,
  intervals: ReadonlyArray<OccupancyRow & { unitId: string }>,
  movements: readonly LedgerMovement[],
  products: Products,
  changes: Changes,
): Promise<void> {
  // Causes that can overlap the lot's time in its units: open, or ending after it first came in.
  const since = Math.min(...intervals.map((iv) => iv.from));
  const causes = await store.causesIn([...new Set(intervals.map((iv) => iv.unitId))], { since });
  const exposed = new Set((await store.exposuresOf(lotId)).map((e) => e.causeId));
  if (causes.length === 0 && exposed.size === 0) return;
  const product = await products.ofLot(lotId);
  const fresh: Array<{
    cause: (typeof causes)[number];
    exposures: Awaited<ReturnType<typeof exposuresOfLot>>;
  }> = [];
  const current = new Set<string>();
  for (const c of causes) {
    const ivs = intervals.filter((iv) => iv.unitId === c.unitId);
    const exposures = await exposuresOfLot(ctx, c, lotId, ivs, product, readingsFor(ctx, c));
    if (exposures.length === 0) continue;
    current.add(c.causeId);
    await store.replaceExposures(c.causeId, lotId, exposures);
    fresh.push({ cause: c, exposures });
  }
  // Exposures of causes the lot no longer overlaps (a back-dated movement took it out before).
  for (const causeId of exposed) if (!current.has(causeId)) await store.replaceExposures(causeId, lotId, []);
  const used = budgetUsedPerSite(await store.exposuresOf(lotId), movements);
  changes.addSites(await store.replaceBudget(lotId, used), lotId);
  changes.addSites(used.keys(), lotId);
  const held = new Set((await store.holds({ lotId })).map((h) => h.causeId));
  for (const { cause, exposures } of fresh) {
    if (held.has(cause.causeId)) continue; // known to the lot: its holds are carried below
    await holdForExposures(ctx, store, cause, { lotId, exposures, movements, product, used }, changes);
  }
  await carryHolds(ctx, store, lotId, movements, changes);
}
