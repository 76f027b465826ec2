/**
 * Correlation: which lots an excursion or a recording gap touched, for their own time inside,
 * and what that means for them — reconciled per lot per batch of engine outputs.
 *
 *   engine outputs (one batch) ─▶ causes: the last event of each excursion, recording gaps per unit
 *     withdrawn (D3) ─▶ exposures deleted, holds into the pool (reconcile.ts)
 *     in force       ─▶ lot_causes ─▶ overlapping occupancy ─▶ readings of each lot's own interval
 *                      ─▶ exposure (worst probe) ─▶ lot_exposures
 *   per lot touched ─▶ budget per site ─▶ policy where the stock is now ─▶ holds (continuing the
 *                      pool's) ─▶ pool lifted ─▶ lot events, eligibility once per site and lot
 *
 * The withdrawal signal is read in one place, `withdrawalOf`. Movements reuse `exposuresOfLot`
 * and `holdForExposures` so a lot moved into a unit in excursion is held in the movement's
 * own transaction.
 */
import type { ExcursionEvent } from "@coldtrace/protocol";
import type { DomainEvent } from "../kernel/events.ts";
import type { StoredReading } from "../storage/types.ts";
import { budgetUsedPerSite } from "./budget.ts";
import { Changes, type LotsContext } from "./context.ts";
import { exposureInWindow, lotLimits, READING_LOOKBACK_MS } from "./exposure.ts";
import { OPEN_END } from "./ledger.ts";
import type { Product } from "./model.ts";
import { holdForExposures, liftWithdrawn } from "./quarantine.ts";
import { type Withdrawal, WithdrawnHolds } from "./reconcile.ts";
import type { LotCause, LotExposure, LotStore, OccupancyRow } from "./store.ts";

/** The withdrawal an excursion event carries (D3: `withdrawn: { reason, supersededBy? }`), if any. */
export function withdrawalOf(e: ExcursionEvent): Withdrawal | undefined {
  const w = (e as ExcursionEvent & { withdrawn?: { reason?: unknown; supersededBy?: unknown } }).withdrawn;
  if (!w || (w.reason !== "superseded" && w.reason !== "retracted")) return undefined;
  return {
    reason: w.reason,
    ...(typeof w.supersededBy === "string" ? { supersededBy: w.supersededBy } : {}),
  };
}

/** A cause as an excursion event describes it. */
export function causeOfExcursion(e: ExcursionEvent): LotCause {
  const w = withdrawalOf(e);
  return {
    causeId: e.excursionId,
    cause: "excursion",
    siteId: e.siteId,
    unitId: e.unitId,
    from: e.startedAt,
    to: e.endedAt,
    lastAt: e.endedAt ?? Math.max(e.at, e.startedAt),
    side: e.side,
    tier: e.tier,
    withdrawnReason: w?.reason ?? null,
    supersededBy: w?.supersededBy ?? null,
  };
}

/** A recording gap in one unit, as a cause. */
export function causeOfGap(g: {
  siteId: string;
  unitId: string;
  from: number;
  to: number;
  gapId: string;
}): LotCause {
  return {
    causeId: g.gapId,
    cause: "gap",
    siteId: g.siteId,
    unitId: g.unitId,
    from: g.from,
    to: g.to,
    lastAt: g.to,
    side: null,
    tier: null,
    withdrawnReason: null,
    supersededBy: null,
  };
}

/**
 * The causes of one batch of engine outputs: the last event of each excursion (a batch may
 * carry several updates of one excursion: only where it ended up matters), and the recording
 * gaps (engine gap state `recording_gap`) per unit.
 */
export function causesOf(outputs: readonly DomainEvent[]): LotCause[] {
  const byKey = new Map<string, LotCause>();
  for (const o of outputs) {
    if (o.type === "excursion") {
      const c = causeOfExcursion(o.event);
      byKey.delete(`${c.causeId}\u0000${c.unitId}`); // keep batch order of the last event
      byKey.set(`${c.causeId}\u0000${c.unitId}`, c);
    } else if (o.type === "gap" && o.gap.reason === "recording_gap") {
      for (const unitId of o.gap.unitIds) {
        const c = causeOfGap({
          siteId: o.gap.siteId,
          unitId,
          from: o.gap.fromObservedAt,
          to: o.gap.toObservedAt,
          gapId: o.gap.gapId,
        });
        byKey.delete(`${c.causeId}\u0000${c.unitId}`);
        byKey.set(`${c.causeId}\u0000${c.unitId}`, c);
      }
    }
  }
  return [...byKey.values()];
}

/** End of the window a cause covers: an open excursion goes on (every lot inside from its start). */
const causeEnd = (c: LotCause) => (c.to === null ? OPEN_END : c.to);

/** Readings of a cause's unit over a window, fetched once per cause and sliced per lot. */
class WindowReadings {
  #fetched: StoredReading[] | undefined;
  readonly #load: () => Promise<StoredReading[]>;
  constructor(load: () => Promise<StoredReading[]>) {
    this.#load = load;
  }
  async get(): Promise<StoredReading[]> {
    this.#fetched ??= await this.#load();
    return this.#fetched;
  }
}

/**
 * The exposure of each interval of a lot in the cause's unit that overlaps the cause, for the
 * lot's own time inside, from the unit's readings (worst probe). An open excursion is known up to
 * its last update: a lot that came in after it has a zero-length exposure, and is still touched.
 */
export async function exposuresOfLot(
  ctx: LotsContext,
  c: LotCause,
  lotId: string,
  intervals: readonly OccupancyRow[],
  product: Product | undefined,
  readings: WindowReadings,
): Promise<LotExposure[]> {
  const out: LotExposure[] = [];
  const known = c.to ?? c.lastAt;
  for (const iv of intervals) {
    if (!(iv.from < Math.max(causeEnd(c), c.from + 1) && (iv.to ?? OPEN_END) > c.from)) continue;
    const from = Math.max(iv.from, c.from);
    const to = Math.max(from, Math.min(iv.to ?? OPEN_END, known));
    const limits = lotLimits(product, ctx.unitLimits(c.unitId));
    const s =
      to > from ? exposureInWindow(await readings.get(), { from, to }, limits, ctx.summarize) : undefined;
    out.push({
      causeId: c.causeId,
      cause: c.cause,
      lotId,
      unitId: c.unitId,
      siteId: iv.siteId,
      from,
      to,
      quantity: iv.quantity,
      side: c.side,
      tier: c.tier,
      peakC: s?.peakC ?? null,
      troughC: s?.troughC ?? null,
      minutesAbove: s?.minutesAbove ?? 0,
      minutesBelow: s?.minutesBelow ?? 0,
      mktC: s?.mktC ?? null,
      coveredMs: s?.coveredMs ?? 0,
      uncoveredMs: s?.uncoveredMs ?? to - from,
    });
  }
  return out;
}

/** Readings for a cause's whole window (plus the reading in effect at its start). */
export function readingsFor(ctx: LotsContext, c: LotCause): WindowReadings {
  const known = c.to ?? c.lastAt;
  return new WindowReadings(() =>
    ctx.readings.range({
      unitId: c.unitId,
      from: c.from - READING_LOOKBACK_MS,
      to: Math.max(known, c.from + 1),
    }),
  );
}

/** A lot's product (through its master data), cached for one use case. */
export class Products {
  readonly #byLot = new Map<string, Product | null>();
  readonly #store: LotStore;
  constructor(store: LotStore) {
    this.#store = store;
  }
  async ofLot(lotId: string): Promise<Product | undefined> {
    let p = this.#byLot.get(lotId);
    if (p === undefined) {
      const lot = await this.#store.lot(lotId);
      p = (lot ? await this.#store.product(lot.sku) : undefined) ?? null;
      this.#byLot.set(lotId, p);
    }
    return p ?? undefined;
  }
}

/**
 * One batch of engine outputs, reconciled per lot, written through `store` (the batch's
 * transaction). Returns the number of lots touched.
 */
export async function reconcileOutputs(
  ctx: LotsContext,
  store: LotStore,
  causes: readonly LotCause[],
): Promise<number> {
  if (causes.length === 0) return 0;
  const at = ctx.clock.now();
  const changes = new Changes();
  const products = new Products(store);
  const withdrawals = new Map<string, Withdrawal>();
  for (const c of causes) {
    if (c.withdrawnReason === "superseded" || c.withdrawnReason === "retracted") {
      withdrawals.set(c.causeId, {
        reason: c.withdrawnReason,
        ...(c.supersededBy ? { supersededBy: c.supersededBy } : {}),
      });
    }
  }
  const pool = new WithdrawnHolds(withdrawals);
  const touched = new Set<string>();

  // 1) Withdrawn causes: no exposure any more; their holds wait for a replacement.
  for (const c of causes) {
    if (!withdrawals.has(c.causeId)) continue;
    await store.upsertCause(c, at);
    for (const lotId of await store.deleteExposuresOf(c.causeId)) touched.add(lotId);
    for (const h of await store.activeHolds({ causeId: c.causeId })) {
      pool.add({ ...h, status: h.status as "quarantined" | "flagged" });
      touched.add(h.lotId);
    }
  }
  // 2) Causes in force: each lot's exposure for its own time inside.
  const fresh = new Map<string, Array<{ cause: LotCause; exposures: LotExposure[] }>>();
  for (const c of causes) {
    if (withdrawals.has(c.causeId)) continue;
    await store.upsertCause(c, at);
    const ivs = await store.intervalsIn(c.unitId, c.from, c.to === null ? OPEN_END - 1 : c.to);
    if (ivs.length === 0) {
      ctx.log.debug({ causeId: c.causeId, unitId: c.unitId }, "no lots inside");
      continue;
    }
    const readings = readingsFor(ctx, c);
    const byLot = new Map<string, OccupancyRow[]>();
    for (const iv of ivs) byLot.set(iv.lotId, [...(byLot.get(iv.lotId) ?? []), iv]);
    for (const [lotId, lotIvs] of byLot) {
      const exposures = await exposuresOfLot(ctx, c, lotId, lotIvs, await products.ofLot(lotId), readings);
      await store.replaceExposures(c.causeId, lotId, exposures);
      fresh.set(lotId, [...(fresh.get(lotId) ?? []), { cause: c, exposures }]);
      touched.add(lotId);
    }
  }
  // 3) Per lot: budget at each site, then the policy where the stock is now.
  for (const lotId of touched) {
    const movements = await store.movementsOf(lotId);
    const used = budgetUsedPerSite(await store.exposuresOf(lotId), movements);
    changes.addSites(await store.replaceBudget(lotId, used), lotId);
    changes.addSites(used.keys(), lotId);
    const product = await products.ofLot(lotId);
    for (const { cause, exposures } of fresh.get(lotId) ?? []) {
      await holdForExposures(
        ctx,
        store,
        cause,
        { lotId, exposures, movements, product, used },
        changes,
        pool,
      );
    }
  }
  // 4) Holds of withdrawn causes that nothing continued: lifted by the gateway.
  if (withdrawals.size > 0) await liftWithdrawn(ctx, store, pool, withdrawals, changes);
  await changes.publish(ctx, store);
  return touched.size;
}
