/**
 * Stability budgets, as pure functions: the minutes beyond its range a lot's stock has used, per
 * site, traced through its movements to where the stock is now; what is left for the policy
 * (exact, negative when exceeded) and for the planner (whole minutes, rounded down).
 */
import { type LedgerMovement, traceExposure } from "./ledger.ts";

/** The part of an exposure the budget needs. */
export interface BudgetExposure {
  cause: "excursion" | "gap";
  unitId: string;
  /** The lot's exposed time in the unit, [from, to]. */
  from: number;
  to: number;
  quantity: number;
  side: string | null;
  minutesAbove: number;
  minutesBelow: number;
}

/**
 * Until when an exposure's stock was exposed, for tracing it: a zero-length exposure (stock that
 * came into a unit whose excursion is open) counts the movement that brought it in.
 */
export function exposedUntil(e: { from: number; to: number }): number {
  return Math.max(e.to, e.from + 1);
}

export interface BudgetUsed {
  high: number;
  low: number;
}

/**
 * Budget used by the stock now at each site: every excursion exposure of the lot, traced through
 * later movements to the units it may have reached, summed per unit; a site takes its worst unit.
 * A gap's exposure is unknown, not zero: it uses no budget (the policy decides on it).
 */
export function budgetUsedPerSite(
  exposures: readonly BudgetExposure[],
  movements: readonly LedgerMovement[],
): Map<string, BudgetUsed> {
  const perUnit = new Map<string, { siteId: string; high: number; low: number }>();
  for (const e of exposures) {
    if (e.cause !== "excursion") continue;
    const high = e.side === "high" ? e.minutesAbove : 0;
    const low = e.side === "low" ? e.minutesBelow : 0;
    for (const h of traceExposure(movements, {
      unitId: e.unitId,
      exposedUntil: exposedUntil(e),
      quantity: e.quantity,
    })) {
      const cur = perUnit.get(h.unitId) ?? { siteId: h.siteId, high: 0, low: 0 };
      cur.high += high;
      cur.low += low;
      perUnit.set(h.unitId, cur);
    }
  }
  const perSite = new Map<string, BudgetUsed>();
  for (const u of perUnit.values()) {
    const cur = perSite.get(u.siteId) ?? { high: 0, low: 0 };
    perSite.set(u.siteId, { high: Math.max(cur.high, u.high), low: Math.max(cur.low, u.low) });
  }
  return perSite;
}

/** Minutes left on a side for the policy: exact, negative when exceeded; null without a budget. */
export function budgetLeft(budget: number | null, used: number): number | null {
  return budget === null ? null : budget - used;
}

/**
 * Minutes left for the planner: whole minutes, rounded down (never more budget than is left),
 * never below 0; null without a budget. A planner compares it with whole-minute route times,
 * and the retained state changes once a minute, not at every reading of an excursion. Rounded
 * to 0.01 first, so 29.9999999 stays 30.
 */
export function remainingMinutes(budget: number | null, used: number): number | null {
  if (budget === null) return null;
  return Math.max(0, Math.floor(Math.round((budget - used) * 100) / 100));
}
