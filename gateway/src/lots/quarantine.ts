/**
 * Quarantine: holds where exposed stock is now, and the decisions that end them.
 *
 *   exposure of a cause ─▶ traced to where the stock is now ─▶ policy (decide) ─▶ hold + lot event
 *   held stock moved ─▶ the same decision where it went (a hold follows the stock)
 *   cause withdrawn by late data ─▶ continued by its replacement, or lifted by the gateway
 *   release / reject (QA) ─▶ every active hold of the lot at the site ends ─▶ lot event
 *
 * Every function writes through the LotStore it is given, inside the caller's transaction;
 * lot events go through the outbox on the same executor. `release`/`reject` are the use cases
 * the QA module's e-signed dispositions call (docs/qa/quarantine.md).
 */
import { ColdtraceError } from "@coldtrace/protocol";
import { type BudgetUsed, budgetLeft, exposedUntil } from "./budget.ts";
import type { Changes, LotsContext } from "./context.ts";
import { type LedgerMovement, traceExposure } from "./ledger.ts";
import type { Product } from "./model.ts";
import { type Decision, decide } from "./policy.ts";
import { holdRank, liftReason, type Withdrawal, type WithdrawnHolds } from "./reconcile.ts";
import type { LotCause, LotExposure, LotStore } from "./store.ts";

/** Who lifts a hold whose causes late data withdrew. */
export const SYSTEM_ACTOR = "system";

export interface HoldRequest {
  siteId: string;
  lotId: string;
  unitId: string;
  quantity: number;
  causeId: string;
  d: Decision;
  excursionIds: string[];
}

/**
 * Apply a decision where the exposed quantity is now. A new hold gets a lot event, unless it
 * continues a hold of an excursion this batch withdrew (`pool`); a flag becoming a quarantine
 * is escalated with an event. Returns true when a hold was created or escalated.
 */
export async function applyHold(
  ctx: LotsContext,
  store: LotStore,
  h: HoldRequest,
  pool?: WithdrawnHolds,
): Promise<boolean> {
  if (h.d.action === "none") return false;
  const holdId = `${h.causeId}|${h.lotId}|${h.unitId}`;
  const status = h.d.action === "quarantine" ? "quarantined" : "flagged";
  const reason = h.d.reasons.join("; ").slice(0, 500);
  const existing = await store.hold(holdId);
  if (!existing) {
    await store.insertHold({
      holdId,
      siteId: h.siteId,
      lotId: h.lotId,
      unitId: h.unitId,
      causeId: h.causeId,
      quantity: h.quantity,
      status,
      reason,
      createdAt: ctx.clock.now(),
    });
    const continued = pool?.continueWith(h, h.causeId, status);
    if (continued?.silent) {
      ctx.log.info(
        { siteId: h.siteId, lotId: h.lotId, causeId: h.causeId, continues: continued.hold.causeId },
        "hold continues a withdrawn excursion's hold; no new lot event",
      );
      return false;
    }
  } else if (existing.status === "lifted") {
    // The cause was withdrawn and has come back (WITHDRAWN.md: "treat it as a cause added again").
    await store.reopenHold(holdId, { status, reason, quantity: h.quantity });
  } else if (existing.status === "flagged" && status === "quarantined") {
    await store.updateHold(holdId, { status, reason, quantity: Math.max(h.quantity, existing.quantity) });
  } else {
    if (
      h.quantity > existing.quantity &&
      (existing.status === "quarantined" || existing.status === "flagged")
    ) {
      await store.updateHold(holdId, {
        status: existing.status,
        reason: existing.reason,
        quantity: h.quantity,
      });
    }
    return false;
  }
  await ctx.events.emit(store, {
    siteId: h.siteId,
    type: status === "quarantined" ? "lot.quarantined" : "lot.flagged_for_review",
    lotId: h.lotId,
    unitId: h.unitId,
    quantity: h.quantity,
    reason,
    excursionIds: h.excursionIds,
  });
  return true;
}

/**
 * Decide for one cause's exposures of a lot, where the stock is now (traced through its
 * movements), with the budget left at each site after every exposure of the lot.
 */
export async function holdForExposures(
  ctx: LotsContext,
  store: LotStore,
  c: Pick<LotCause, "cause" | "causeId" | "tier">,
  f: {
    lotId: string;
    exposures: readonly LotExposure[];
    movements: readonly LedgerMovement[];
    product: Product | undefined;
    used: ReadonlyMap<string, BudgetUsed>;
  },
  changes: Changes,
  pool?: WithdrawnHolds,
): Promise<void> {
  const { product } = f;
  for (const e of f.exposures) {
    const now = traceExposure(f.movements, {
      unitId: e.unitId,
      exposedUntil: exposedUntil(e),
      quantity: e.quantity,
    });
    if (now.length === 0) {
      ctx.log.warn(
        { lotId: f.lotId, causeId: c.causeId },
        "exposed quantity no longer in stock (dispensed or destroyed)",
      );
    }
    for (const h of now) {
      const used = f.used.get(h.siteId);
      const left = (side: "high" | "low") =>
        budgetLeft(product?.budgetMinutes[side] ?? null, used ? used[side] : 0);
      const d = decide(
        ctx.policy,
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
      await applyHold(
        ctx,
        store,
        {
          siteId: h.siteId,
          lotId: f.lotId,
          unitId: h.unitId,
          quantity: h.exposed,
          causeId: c.causeId,
          d,
          excursionIds: c.cause === "excursion" ? [c.causeId] : [],
        },
        pool,
      );
      changes.add(h.siteId, f.lotId);
    }
  }
}

/**
 * Held stock that moves keeps its hold: for every cause with an active hold on the lot, trace
 * that cause's exposures to where the stock is now and hold it there too (same decision).
 */
export async function carryHolds(
  ctx: LotsContext,
  store: LotStore,
  lotId: string,
  movements: readonly LedgerMovement[],
  changes: Changes,
): Promise<void> {
  const byCause = new Map<string, { status: string; reason: string }>();
  for (const h of await store.activeHolds({ lotId })) {
    const cur = byCause.get(h.causeId);
    if (!cur || (cur.status === "flagged" && h.status === "quarantined")) byCause.set(h.causeId, h);
  }
  if (byCause.size === 0) return;
  const exposures = await store.exposuresOf(lotId);
  for (const [causeId, h] of byCause) {
    for (const e of exposures) {
      if (e.causeId !== causeId) continue;
      for (const now of traceExposure(movements, {
        unitId: e.unitId,
        exposedUntil: exposedUntil(e),
        quantity: e.quantity,
      })) {
        const created = await applyHold(ctx, store, {
          siteId: now.siteId,
          lotId,
          unitId: now.unitId,
          quantity: now.exposed,
          causeId,
          d: { action: h.status === "quarantined" ? "quarantine" : "flag", reasons: [h.reason] },
          excursionIds: e.cause === "excursion" ? [causeId] : [],
        });
        if (created) changes.add(now.siteId, lotId);
      }
    }
  }
}

/**
 * End the holds of this batch's withdrawn causes: those a replacement continued (reason: the
 * replacement), and those nobody continued (reason: the withdrawal). A lot left with no active
 * hold at a site gets one `lot.released` by the gateway itself (`by: "system"`).
 */
export async function liftWithdrawn(
  ctx: LotsContext,
  store: LotStore,
  pool: WithdrawnHolds,
  withdrawals: ReadonlyMap<string, Withdrawal>,
  changes: Changes,
): Promise<void> {
  const at = ctx.clock.now();
  for (const { holdId, by } of pool.continued()) {
    const h = await store.hold(holdId);
    if (!h) continue;
    await store.decideHolds(
      { siteId: h.siteId, lotId: h.lotId, holdIds: [holdId] },
      {
        status: "lifted",
        by: SYSTEM_ACTOR,
        reason: liftReason(h.causeId, withdrawals.get(h.causeId), by),
        at,
      },
    );
  }
  for (const holds of pool.uncontinued().values()) {
    const first = holds[0];
    if (!first) continue;
    const { siteId, lotId } = first;
    const reasons: string[] = [];
    for (const h of holds) {
      const reason = liftReason(h.causeId, withdrawals.get(h.causeId), undefined);
      reasons.push(reason);
      await store.decideHolds(
        { siteId, lotId, holdIds: [h.holdId] },
        { status: "lifted", by: SYSTEM_ACTOR, reason, at },
      );
    }
    changes.add(siteId, lotId);
    const left = await store.activeHolds({ siteId, lotId });
    if (left.length > 0) continue; // still held for another cause: no release
    ctx.log.info(
      { siteId, lotId, causes: holds.map((h) => h.causeId) },
      "hold lifted: its causes were withdrawn",
    );
    await ctx.events.emit(store, {
      siteId,
      type: "lot.released",
      lotId,
      quantity: await store.stock(siteId, lotId),
      reason: [...new Set(reasons)].join("; "),
      by: SYSTEM_ACTOR,
      excursionIds: holds.map((h) => h.causeId),
    });
  }
}

export type Disposition = "released" | "rejected" | "returned_to_supplier";

/**
 * A QA decision on a lot at a site: every active hold ends with `by` and `reason`, the decided
 * status is recorded, and a lot event says so. Release needs something held and is refused
 * while the lot is still in a unit whose excursion is open (CT_LOT_IN_EXCURSION); reject may
 * follow a release but never repeats on a rejected or returned lot (CT_LOT_STATE).
 */
export async function decideLot(
  ctx: LotsContext,
  store: LotStore,
  d: { siteId: string; lotId: string; by: string; reason: string },
  to: Disposition,
): Promise<void> {
  const active = await store.activeHolds({ siteId: d.siteId, lotId: d.lotId });
  const state = await store.siteState(d.siteId, d.lotId);
  const final = state?.status === "rejected" || state?.status === "returned_to_supplier";
  if ((to === "released" && active.length === 0) || (to !== "released" && final)) {
    throw new ColdtraceError(
      "CT_LOT_STATE",
      `lot ${JSON.stringify(d.lotId)} at ${d.siteId} cannot be ${to}: it is ${state?.status ?? "not known there"}${active.length === 0 ? " and not held" : ""}`,
      { siteId: d.siteId, lotId: d.lotId, to, status: state?.status ?? null },
    );
  }
  if (to === "released") await refuseWhileInExcursion(store, d.siteId, d.lotId);
  const now = ctx.clock.now();
  await store.decideHolds(
    { siteId: d.siteId, lotId: d.lotId },
    { status: to, by: d.by, reason: d.reason, at: now },
  );
  await store.setStatus(d.siteId, d.lotId, to, now);
  await ctx.events.emit(store, {
    siteId: d.siteId,
    type:
      to === "released" ? "lot.released" : to === "rejected" ? "lot.rejected" : "lot.returned_to_supplier",
    lotId: d.lotId,
    quantity: await store.stock(d.siteId, d.lotId),
    reason: d.reason,
    by: d.by,
    excursionIds: active.map((h) => h.causeId),
  });
}

/** CT_LOT_IN_EXCURSION when stock of the lot at the site is in a unit whose excursion is still open. */
async function refuseWhileInExcursion(store: LotStore, siteId: string, lotId: string): Promise<void> {
  const holdings = (await store.holdingsOf(lotId)).filter((h) => h.siteId === siteId);
  const open = (
    await store.causesIn(
      holdings.map((h) => h.unitId),
      { openOnly: true },
    )
  ).filter((c) => c.cause === "excursion");
  const first = open[0];
  if (!first) return;
  throw new ColdtraceError(
    "CT_LOT_IN_EXCURSION",
    `lot ${JSON.stringify(lotId)} at ${siteId} cannot be released: it is still in ${first.unitId}, whose excursion ${first.causeId} (${first.tier ?? "?"} tier, since ${new Date(first.from).toISOString()}) is open; release it once the excursion has closed or the stock has left the unit`,
    { siteId, lotId, unitId: first.unitId, excursionId: first.causeId },
  );
}

/** The stronger of two active statuses. */
export function strongest(a: keyof typeof holdRank, b: keyof typeof holdRank): keyof typeof holdRank {
  return holdRank[a] >= holdRank[b] ? a : b;
}
