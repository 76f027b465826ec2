/**
 * A lot's eligibility at a site, as a pure function of what is known about it: its master data,
 * its product, the stock there, the active holds, the decided status and the budget used. The
 * retained `eligibility` state the planner reads is exactly this (protocol/src/schemas/gateway.ts).
 */
import type { Eligibility } from "@coldtrace/protocol";
import { type BudgetUsed, remainingMinutes } from "./budget.ts";
import type { Lot, Product } from "./model.ts";

export interface EligibilityFacts {
  lot: Lot | undefined;
  product: Product | undefined;
  /** Stock of the lot at the site now. */
  stock: number;
  /** Active holds at the site (quarantined, flagged), oldest first. */
  holds: ReadonlyArray<{ status: string; reason: string }>;
  /** The decided status and the lotSeq of the last lot event at the site. */
  state: { status: string; lotSeq: number } | undefined;
  used: BudgetUsed | undefined;
}

const statuses = new Set(["available", "quarantined", "released", "rejected", "returned_to_supplier"]);

export function composeEligibility(
  siteId: string,
  lotId: string,
  f: EligibilityFacts,
  now: number,
): Eligibility {
  const { lot, product, holds, state, used } = f;
  const reasons: string[] = [];
  const quarantined = holds.filter((h) => h.status === "quarantined");
  const decided = state && statuses.has(state.status) ? state.status : "available";
  // A quarantine hold wins over any decided status; a "quarantined" status with no hold left
  // (every hold lifted) is available again.
  let status = (quarantined.length > 0 ? "quarantined" : decided) as Eligibility["status"];
  if (status === "quarantined" && quarantined.length === 0) status = "available";
  for (const h of quarantined) reasons.push(`quarantined: ${h.reason}`);
  for (const h of holds) if (h.status === "flagged") reasons.push(`flagged for QA review: ${h.reason}`);
  if (status === "rejected") reasons.push("rejected by QA");
  if (status === "returned_to_supplier") reasons.push("returned to supplier");
  const expiresAt = lot?.expiresAt ?? null;
  const expired = expiresAt !== null && expiresAt <= now;
  if (expired) reasons.push(`expired at ${new Date(expiresAt).toISOString()}`);
  if (!product) reasons.push(`no product master data for SKU ${lot?.sku ?? "?"}: stability budget unknown`);
  const remaining = (side: "high" | "low") =>
    remainingMinutes(product?.budgetMinutes[side] ?? null, used ? used[side] : 0);
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
    lotSeq: state?.lotSeq ?? 0,
  };
}

/** What a retained state says, without its time: two states with the same content are one. */
export function eligibilityContent(e: Eligibility): string {
  return JSON.stringify({ ...e, updatedAt: 0 });
}
