/**
 * Causes reconciled per lot per batch (docs/qa/quarantine.md "Late data"), as pure bookkeeping.
 * When late readings withdraw an excursion (D3: `withdrawn` on its last event), the holds it
 * caused are not ended one by one with an event each: within the batch they wait here. A hold
 * the replacing excursion makes at the same place (site, lot, unit), no stronger than the
 * withdrawn one, continues it silently — one lot event for one episode, however many
 * excursions late data superseded on the way. Holds nobody continues are lifted by the gateway
 * with the withdrawal as the recorded reason.
 *
 *   batch: A withdrawn (superseded by B) · B opened
 *     hold(A, lot, fridge) ──▶ pool ──▶ B holds the lot in the fridge ──▶ continued, no event
 *                                   └─▶ B does not hold it            ──▶ lifted by the gateway
 */

/** The strength of an active hold: a quarantine is more than a flag. */
export const holdRank = { flagged: 1, quarantined: 2 } as const;
export type ActiveStatus = keyof typeof holdRank;

export interface WithdrawnHold {
  holdId: string;
  siteId: string;
  lotId: string;
  unitId: string;
  causeId: string;
  status: ActiveStatus;
}

export interface Withdrawal {
  reason: "superseded" | "retracted";
  supersededBy?: string;
}

/**
 * The cause that finally replaces `causeId` after this batch's withdrawals: supersededBy
 * followed through causes that were themselves withdrawn (A → B → C gives C). undefined when
 * the chain ends in a retraction or loops.
 */
export function finalReplacement(
  causeId: string,
  withdrawals: ReadonlyMap<string, Withdrawal>,
): string | undefined {
  const seen = new Set<string>([causeId]);
  let w = withdrawals.get(causeId);
  while (w) {
    if (w.reason !== "superseded" || w.supersededBy === undefined) return undefined;
    const next = w.supersededBy;
    if (seen.has(next)) return undefined;
    seen.add(next);
    w = withdrawals.get(next);
    if (!w) return next;
  }
  return undefined;
}

export interface Continuation {
  hold: WithdrawnHold;
  /** false when the new hold is stronger (a flag became a quarantine): that is news, with an event. */
  silent: boolean;
}

/** The holds of this batch's withdrawn causes, until continued or lifted. */
export class WithdrawnHolds {
  readonly #withdrawals: ReadonlyMap<string, Withdrawal>;
  readonly #open = new Map<string, WithdrawnHold>();
  readonly #continued = new Map<string, string>();

  constructor(withdrawals: ReadonlyMap<string, Withdrawal>) {
    this.#withdrawals = withdrawals;
  }

  add(h: WithdrawnHold): void {
    this.#open.set(h.holdId, h);
  }

  get size(): number {
    return this.#open.size;
  }

  /**
   * A new hold of `causeId` at a place: the withdrawn hold it continues (same place, replaced
   * by this cause), if any. A continued hold leaves the pool.
   */
  continueWith(
    place: { siteId: string; lotId: string; unitId: string },
    causeId: string,
    status: ActiveStatus,
  ): Continuation | undefined {
    for (const h of this.#open.values()) {
      if (h.siteId !== place.siteId || h.lotId !== place.lotId || h.unitId !== place.unitId) continue;
      if (finalReplacement(h.causeId, this.#withdrawals) !== causeId) continue;
      this.#open.delete(h.holdId);
      this.#continued.set(h.holdId, causeId);
      return { hold: h, silent: holdRank[status] <= holdRank[h.status] };
    }
    return undefined;
  }

  /** Holds continued by a replacing cause, with that cause. */
  continued(): Array<{ holdId: string; by: string }> {
    return [...this.#continued].map(([holdId, by]) => ({ holdId, by }));
  }

  /** Holds nobody continued, grouped by site and lot: the gateway lifts them. */
  uncontinued(): Map<string, WithdrawnHold[]> {
    const out = new Map<string, WithdrawnHold[]>();
    for (const h of this.#open.values()) {
      const key = `${h.siteId}\u0000${h.lotId}`;
      const list = out.get(key);
      if (list) list.push(h);
      else out.set(key, [h]);
    }
    return out;
  }
}

/** The recorded reason of a hold lifted because its cause was withdrawn. */
export function liftReason(
  causeId: string,
  w: Withdrawal | undefined,
  replacedBy: string | undefined,
): string {
  if (replacedBy !== undefined) return `excursion ${causeId} was superseded by ${replacedBy} (late data)`;
  if (w?.reason === "superseded")
    return `excursion ${causeId} was superseded by ${w.supersededBy ?? "another excursion"} (late data); that one does not touch the lot`;
  return `excursion ${causeId} was withdrawn: late data shows it did not happen`;
}
