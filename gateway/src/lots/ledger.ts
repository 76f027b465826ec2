/**
 * The occupancy ledger, as pure functions over one lot's movements: which quantity of the lot
 * was in which unit, from when to when, and where quantity exposed in one unit has gone since.
 *
 *   movements of a lot ─▶ sort by (occurredAt, movementId) ─▶ running stock per unit
 *                                                           ─▶ intervals [from, to) with quantity
 *
 * Sorting by event time with the movement id as tie-break makes the ledger independent of
 * arrival order: any permutation of the same movements gives the same intervals.
 */
import type { Movement } from "@coldtrace/protocol";

/** `to` of an interval that is still open (the stock is still there). */
export const OPEN_END = 8_000_000_000_000;

export interface OccupancyInterval {
  lotId: string;
  unitId: string;
  /** The site whose movement brought the stock into the unit. */
  siteId: string;
  quantity: number;
  /** Inclusive, ms. */
  from: number;
  /** Exclusive, ms; OPEN_END while still inside. */
  to: number;
}

export type LedgerMovement = Pick<
  Movement,
  "movementId" | "kind" | "siteId" | "occurredAt" | "lotId" | "quantity" | "fromUnitId" | "toUnitId"
>;

export function byEventTime(a: LedgerMovement, b: LedgerMovement): number {
  return (
    a.occurredAt - b.occurredAt || (a.movementId < b.movementId ? -1 : a.movementId > b.movementId ? 1 : 0)
  );
}

/** Occupancy intervals of one lot in every unit, from its movements (any order, no duplicates). */
export function lotIntervals(movements: readonly LedgerMovement[]): OccupancyInterval[] {
  const sorted = [...movements].sort(byEventTime);
  const open = new Map<string, { quantity: number; from: number; siteId: string }>();
  const out: OccupancyInterval[] = [];
  const lotId = sorted[0]?.lotId ?? "";
  const change = (unitId: string, delta: number, at: number, siteId: string | undefined) => {
    const cur = open.get(unitId);
    const before = cur?.quantity ?? 0;
    const after = before + delta;
    const site = siteId ?? cur?.siteId ?? "";
    if (cur && before > 0 && at > cur.from) {
      out.push({ lotId, unitId, siteId: cur.siteId, quantity: before, from: cur.from, to: at });
    }
    open.set(unitId, { quantity: after, from: at, siteId: site });
  };
  for (const m of sorted) {
    if (m.fromUnitId !== undefined) change(m.fromUnitId, -m.quantity, m.occurredAt, undefined);
    if (m.toUnitId !== undefined) change(m.toUnitId, m.quantity, m.occurredAt, m.siteId);
  }
  for (const [unitId, cur] of open) {
    if (cur.quantity > 0)
      out.push({ lotId, unitId, siteId: cur.siteId, quantity: cur.quantity, from: cur.from, to: OPEN_END });
  }
  // Same-instant movements leave zero-length pieces out; merge neighbours with equal quantity.
  out.sort((a, b) => (a.unitId < b.unitId ? -1 : a.unitId > b.unitId ? 1 : a.from - b.from));
  const merged: OccupancyInterval[] = [];
  for (const iv of out) {
    const last = merged.at(-1);
    if (
      last &&
      last.unitId === iv.unitId &&
      last.to === iv.from &&
      last.quantity === iv.quantity &&
      last.siteId === iv.siteId
    ) {
      last.to = iv.to;
    } else {
      merged.push({ ...iv });
    }
  }
  return merged;
}

export interface Holding {
  unitId: string;
  siteId: string;
  /** Stock of the lot in the unit now. */
  quantity: number;
  /** Of it, how much may carry the exposure (worst case). */
  exposed: number;
}

/**
 * Follow quantity exposed in `unitId` up to `exposedUntil` through the later movements to where it
 * is now. We cannot tell which units of a lot left a unit, so the trace is worst case (GDP:
 * hold whatever could be affected): a movement out of a unit with exposed stock carries up to
 * its quantity of exposure, and the source keeps exposure up to its remaining stock.
 * Dispensed or destroyed quantity leaves the trace.
 */
export function traceExposure(
  movements: readonly LedgerMovement[],
  exposure: { unitId: string; exposedUntil: number; quantity: number },
): Holding[] {
  const sorted = [...movements].sort(byEventTime);
  const stock = new Map<string, number>();
  const site = new Map<string, string>();
  const exposed = new Map<string, number>();
  let seeded = false;
  const seed = () => {
    seeded = true;
    const inUnit = stock.get(exposure.unitId) ?? 0;
    exposed.set(exposure.unitId, Math.max(0, Math.min(exposure.quantity, inUnit)));
  };
  for (const m of sorted) {
    if (!seeded && m.occurredAt >= exposure.exposedUntil) seed();
    let carried = 0;
    if (m.fromUnitId !== undefined) {
      const from = m.fromUnitId;
      const left = (stock.get(from) ?? 0) - m.quantity;
      stock.set(from, left);
      const ex = exposed.get(from) ?? 0;
      carried = Math.min(m.quantity, ex);
      exposed.set(from, Math.max(0, Math.min(ex, left)));
    }
    if (m.toUnitId !== undefined) {
      const to = m.toUnitId;
      const now = (stock.get(to) ?? 0) + m.quantity;
      stock.set(to, now);
      site.set(to, m.siteId);
      if (seeded) exposed.set(to, Math.min(now, (exposed.get(to) ?? 0) + carried));
    }
  }
  if (!seeded) seed();
  const out: Holding[] = [];
  for (const [unitId, ex] of exposed) {
    const quantity = stock.get(unitId) ?? 0;
    if (ex > 0 && quantity > 0) out.push({ unitId, siteId: site.get(unitId) ?? "", quantity, exposed: ex });
  }
  return out.sort((a, b) => (a.unitId < b.unitId ? -1 : 1));
}

/** Current stock of a lot per unit (units with stock > 0). */
export function currentHoldings(
  movements: readonly LedgerMovement[],
): Array<{ unitId: string; siteId: string; quantity: number }> {
  return lotIntervals(movements)
    .filter((iv) => iv.to === OPEN_END)
    .map((iv) => ({ unitId: iv.unitId, siteId: iv.siteId, quantity: iv.quantity }));
}

/** A movement that takes more out of a unit than the ledger holds there at that moment. */
export interface LedgerViolation {
  movementId: string;
  unitId: string;
  at: number;
  /** Stock of the lot in the unit just before the movement. */
  held: number;
  taken: number;
}

/**
 * Where a lot's movements contradict themselves: in event-time order (arrival order does not
 * matter), every take-out (move, load, unload, dispense, destroy) whose unit holds less than it
 * takes. Movements at the same instant are simultaneous: what comes into a unit at that instant
 * counts for what leaves it then. An empty list is a consistent ledger.
 */
export function ledgerViolations(movements: readonly LedgerMovement[]): LedgerViolation[] {
  const stock = new Map<string, number>();
  const out: LedgerViolation[] = [];
  const sorted = [...movements].sort(byEventTime);
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (
      j < sorted.length &&
      (sorted[j] as LedgerMovement).occurredAt === (sorted[i] as LedgerMovement).occurredAt
    )
      j++;
    const instant = sorted.slice(i, j);
    for (const m of instant)
      if (m.toUnitId !== undefined) stock.set(m.toUnitId, (stock.get(m.toUnitId) ?? 0) + m.quantity);
    for (const m of instant) {
      if (m.fromUnitId === undefined) continue;
      const held = stock.get(m.fromUnitId) ?? 0;
      if (held < m.quantity)
        out.push({
          movementId: m.movementId,
          unitId: m.fromUnitId,
          at: m.occurredAt,
          held,
          taken: m.quantity,
        });
      stock.set(m.fromUnitId, held - m.quantity);
    }
    i = j;
  }
  return out;
}
