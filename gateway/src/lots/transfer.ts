/**
 * The transfer check for the planner: may this quantity of a lot leave this unit on this route?
 * A pure verdict from the lot's eligibility where it is and the route's worst-case exposure
 * (docs/integrator/planner.md).
 */
import type { Eligibility } from "@coldtrace/protocol";
import { type BoxClass, worstCaseExposureMinutes } from "./model.ts";

export interface TransferVerdict {
  allow: boolean;
  reasons: string[];
}

export interface TransferRequest {
  lotId: string;
  quantity: number;
  fromUnitId: string;
  expectedTransitMinutes: number;
  boxClass: BoxClass;
}

/**
 * `holding`: the lot's stock in the unit (undefined: none there); `e`: its eligibility at the
 * unit's site; `now`: the gateway clock.
 */
export function transferVerdict(
  q: TransferRequest,
  holding: { quantity: number } | undefined,
  e: Eligibility | undefined,
  now: number,
): TransferVerdict {
  if (!holding || !e) return { allow: false, reasons: [`lot ${q.lotId} is not in ${q.fromUnitId}`] };
  const reasons: string[] = [];
  if (!e.eligible) reasons.push(...(e.reasons.length > 0 ? e.reasons : [`lot is ${e.status}`]));
  const available = Math.min(holding.quantity, e.transferableQuantity);
  if (e.eligible && q.quantity > available) {
    reasons.push(`only ${available} transferable in ${q.fromUnitId}, asked for ${q.quantity}`);
  }
  if (e.eligible && e.expiresAt !== null && e.expiresAt <= now + q.expectedTransitMinutes * 60_000) {
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
}
