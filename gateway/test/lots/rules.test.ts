/**
 * The lots module's pure rules, without a database: budget rounding, worst of probes,
 * eligibility, the ledger's consistency, budget per site, the reconciliation of withdrawn
 * causes, and the transfer verdict. Unit examples and fast-check properties.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { budgetLeft, budgetUsedPerSite, remainingMinutes } from "../../src/lots/budget.ts";
import { composeEligibility, type EligibilityFacts } from "../../src/lots/eligibility.ts";
import {
  type ExposureSummary,
  exposureInWindow,
  lotLimits,
  noExposure,
  worstOfProbes,
} from "../../src/lots/exposure.ts";
import { type LedgerMovement, ledgerViolations } from "../../src/lots/ledger.ts";
import { finalReplacement, type Withdrawal, WithdrawnHolds } from "../../src/lots/reconcile.ts";
import { transferVerdict } from "../../src/lots/transfer.ts";
import type { StoredReading } from "../../src/storage/types.ts";

const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 20, 8);

describe("budget", () => {
  it("leaves whole minutes, rounded down, never below 0; exact minutes for the policy", () => {
    expect(remainingMinutes(60, 29.5)).toBe(30);
    expect(remainingMinutes(60, 30.0000001)).toBe(30); // 29.9999999 stays 30
    expect(remainingMinutes(60, 30.02)).toBe(29);
    expect(remainingMinutes(60, 75)).toBe(0);
    expect(remainingMinutes(null, 10)).toBeNull();
    expect(budgetLeft(60, 75)).toBe(-15);
    expect(budgetLeft(null, 1)).toBeNull();
  });

  it("property: an integer, never more than is left, never negative, never up as more is used", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 10_000, noNaN: true }),
        fc.double({ min: 0, max: 10_000, noNaN: true }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (budget, used, more) => {
          const r = remainingMinutes(budget, used) as number;
          expect(Number.isInteger(r)).toBe(true);
          expect(r).toBeGreaterThanOrEqual(0);
          expect(r).toBeLessThanOrEqual(Math.max(0, budget - used) + 0.005);
          expect(remainingMinutes(budget, used + more) as number).toBeLessThanOrEqual(r);
        },
      ),
    );
  });

  it("counts excursions where the stock is now, a site taking its worst unit; a gap uses no budget", () => {
    const ms: LedgerMovement[] = [
      {
        movementId: "1",
        kind: "receive",
        siteId: "a",
        occurredAt: T0,
        lotId: "L",
        quantity: 10,
        toUnitId: "f1",
      },
      {
        movementId: "2",
        kind: "move",
        siteId: "a",
        occurredAt: T0 + 60 * MIN,
        lotId: "L",
        quantity: 4,
        fromUnitId: "f1",
        toUnitId: "f2",
      },
    ];
    const used = budgetUsedPerSite(
      [
        {
          cause: "excursion",
          unitId: "f1",
          from: T0,
          to: T0 + 30 * MIN,
          quantity: 10,
          side: "high",
          minutesAbove: 30,
          minutesBelow: 0,
        },
        {
          cause: "excursion",
          unitId: "f2",
          from: T0 + 70 * MIN,
          to: T0 + 80 * MIN,
          quantity: 4,
          side: "high",
          minutesAbove: 10,
          minutesBelow: 0,
        },
        {
          cause: "gap",
          unitId: "f1",
          from: T0,
          to: T0 + 90 * MIN,
          quantity: 10,
          side: null,
          minutesAbove: 0,
          minutesBelow: 0,
        },
      ],
      ms,
    );
    // f2 holds stock exposed in f1 (30) and its own 10: 40; f1 30; the site takes 40.
    expect(used).toEqual(new Map([["a", { high: 40, low: 0 }]]));
  });
});

const summary = fc.record({
  peakC: fc.option(fc.double({ min: -40, max: 40, noNaN: true }), { nil: null }),
  troughC: fc.option(fc.double({ min: -40, max: 40, noNaN: true }), { nil: null }),
  minutesAbove: fc.double({ min: 0, max: 600, noNaN: true }),
  minutesBelow: fc.double({ min: 0, max: 600, noNaN: true }),
  mktC: fc.option(fc.double({ min: -40, max: 40, noNaN: true }), { nil: null }),
  coveredMs: fc.integer({ min: 0, max: 3_600_000 }),
  uncoveredMs: fc.integer({ min: 0, max: 3_600_000 }),
}) satisfies fc.Arbitrary<ExposureSummary>;

describe("worst of probes", () => {
  it("property: any order of the probes gives the same worst, no better than any one probe", () => {
    fc.assert(
      fc.property(fc.array(summary, { minLength: 1, maxLength: 5 }), fc.integer(), (list, seed) => {
        const worst = worstOfProbes(list, 3_600_000);
        let x = seed;
        const shuffled = [...list].sort(() => {
          x = (x * 16807) % 2147483647;
          return (x % 3) - 1;
        });
        expect(worstOfProbes(shuffled, 3_600_000)).toEqual(worst);
        for (const s of list) {
          expect(worst.minutesAbove).toBeGreaterThanOrEqual(s.minutesAbove);
          expect(worst.minutesBelow).toBeGreaterThanOrEqual(s.minutesBelow);
          if (s.peakC !== null) expect(worst.peakC as number).toBeGreaterThanOrEqual(s.peakC);
          if (s.troughC !== null) expect(worst.troughC as number).toBeLessThanOrEqual(s.troughC);
        }
      }),
    );
    expect(worstOfProbes([], 60_000)).toEqual(noExposure(60_000));
  });

  it("summarises each probe's readings of the window and takes the worst (real summarizeExposure)", async () => {
    const { summarizeExposure } = await import("../../src/excursions/metrics.ts");
    const r = (probeId: string, t: number, tempC: number): StoredReading => ({
      agentId: "a",
      seq: t,
      siteId: "s",
      unitId: "u",
      probeId,
      observedAt: T0 + t * MIN,
      receivedAt: 0,
      tempC,
      quality: "ok",
      backfill: false,
    });
    const readings = [r("p1", 0, 9), r("p1", 10, 5), r("p2", 0, 5), r("p2", 5, 10), r("p2", 20, 5)];
    const s = exposureInWindow(readings, { from: T0, to: T0 + 30 * MIN }, { high: 8 }, summarizeExposure);
    expect(s.minutesAbove).toBe(15); // p2: 15 min above 8 °C; p1 only 10
    expect(s.peakC).toBe(10);
    expect(lotLimits({ highC: null, lowC: 2 }, { high: 8, low: 0 })).toEqual({ high: 8, low: 2 });
  });
});

const facts = (p: Partial<EligibilityFacts> = {}): EligibilityFacts => ({
  lot: { lotId: "L", sku: "S", expiresAt: null, serialNumbers: [] },
  product: {
    sku: "S",
    name: "n",
    storageClass: "2-8C",
    lowC: 2,
    highC: 8,
    budgetMinutes: { high: 60, low: null },
    absoluteMinC: null,
    absoluteMaxC: null,
    doNotFreeze: false,
  },
  stock: 5,
  holds: [],
  state: undefined,
  used: undefined,
  ...p,
});

describe("eligibility", () => {
  it("property: eligible only when available or released and in date; only then transferable", () => {
    const status = fc.constantFrom("available", "released", "rejected", "returned_to_supplier");
    const hold = fc.record({
      status: fc.constantFrom("quarantined", "flagged"),
      reason: fc.string({ maxLength: 20 }),
    });
    fc.assert(
      fc.property(
        status,
        fc.array(hold, { maxLength: 3 }),
        fc.option(fc.integer({ min: T0 - 1000, max: T0 + 1000 }), { nil: null }),
        fc.integer({ min: 0, max: 100 }),
        (s, holds, expiresAt, stock) => {
          const e = composeEligibility(
            "site",
            "L",
            facts({
              holds,
              state: { status: s, lotSeq: 2 },
              stock,
              lot: { lotId: "L", sku: "S", expiresAt, serialNumbers: [] },
            }),
            T0,
          );
          const quarantined = holds.some((h) => h.status === "quarantined");
          expect(e.status).toBe(quarantined ? "quarantined" : s);
          const inDate = expiresAt === null || expiresAt > T0;
          expect(e.eligible).toBe((e.status === "available" || e.status === "released") && inDate);
          expect(e.transferableQuantity).toBe(e.eligible ? stock : 0);
          expect(e.reasons.length).toBeGreaterThanOrEqual(holds.length);
          expect(e.lotSeq).toBe(2);
        },
      ),
    );
  });

  it("says why: a missing product master, expiry, the budget left", () => {
    const e = composeEligibility(
      "site",
      "L",
      facts({ product: undefined, lot: { lotId: "L", sku: "S", expiresAt: T0, serialNumbers: [] } }),
      T0,
    );
    expect(e.reasons.join(" ")).toMatch(
      /expired at 2026-11-20T08:00:00.000Z.*no product master data for SKU S/,
    );
    const used = composeEligibility("site", "L", facts({ used: { high: 12.5, low: 0 } }), T0);
    expect(used.remainingBudgetMinutes).toEqual({ high: 47, low: null });
  });
});

describe("ledger consistency", () => {
  const life = (): LedgerMovement[] => [
    {
      movementId: "r",
      kind: "receive",
      siteId: "s",
      occurredAt: T0,
      lotId: "L",
      quantity: 6,
      toUnitId: "f1",
    },
    {
      movementId: "m",
      kind: "move",
      siteId: "s",
      occurredAt: T0 + MIN,
      lotId: "L",
      quantity: 4,
      fromUnitId: "f1",
      toUnitId: "f2",
    },
    {
      movementId: "d",
      kind: "dispense",
      siteId: "s",
      occurredAt: T0 + 2 * MIN,
      lotId: "L",
      quantity: 4,
      fromUnitId: "f2",
    },
  ];

  it("property: the verdict is the same for any arrival order of the same movements", () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray(life(), { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 1, max: 10 }),
        (ms, extra) => {
          expect(ledgerViolations(ms)).toEqual([]);
          const over: LedgerMovement = {
            movementId: "x",
            kind: "dispense",
            siteId: "s",
            occurredAt: T0 + 3 * MIN,
            lotId: "L",
            quantity: 2 + extra,
            fromUnitId: "f1",
          };
          expect(ledgerViolations([over, ...ms])).toEqual([
            { movementId: "x", unitId: "f1", at: T0 + 3 * MIN, held: 2, taken: 2 + extra },
          ]);
        },
      ),
    );
  });

  it("counts movements at the same instant as simultaneous, whatever their ids", () => {
    const at = T0 + 5 * MIN;
    const same: LedgerMovement[] = [
      ...life().slice(0, 1),
      // "m-1000" sorts before "m-999": the unload is placed before the load it empties.
      {
        movementId: "m-999",
        kind: "load",
        siteId: "s",
        occurredAt: at,
        lotId: "L",
        quantity: 3,
        fromUnitId: "f1",
        toUnitId: "box",
      },
      {
        movementId: "m-1000",
        kind: "unload",
        siteId: "s",
        occurredAt: at,
        lotId: "L",
        quantity: 3,
        fromUnitId: "box",
        toUnitId: "f2",
      },
    ];
    expect(ledgerViolations(same)).toEqual([]);
  });

  it("finds dispensing 600 of 6", () => {
    const v = ledgerViolations([
      ...life().slice(0, 1),
      {
        movementId: "z",
        kind: "dispense",
        siteId: "s",
        occurredAt: T0 + MIN,
        lotId: "L",
        quantity: 600,
        fromUnitId: "f1",
      },
    ]);
    expect(v).toEqual([{ movementId: "z", unitId: "f1", at: T0 + MIN, held: 6, taken: 600 }]);
  });
});

describe("reconciliation of withdrawn causes", () => {
  const w = (supersededBy?: string): Withdrawal =>
    supersededBy === undefined ? { reason: "retracted" } : { reason: "superseded", supersededBy };

  it("follows a chain of supersessions to the excursion that stands", () => {
    const ws = new Map([
      ["a", w("b")],
      ["b", w("c")],
      ["x", w()],
      ["loop1", w("loop2")],
      ["loop2", w("loop1")],
    ]);
    expect(finalReplacement("a", ws)).toBe("c");
    expect(finalReplacement("b", ws)).toBe("c");
    expect(finalReplacement("x", ws)).toBeUndefined();
    expect(finalReplacement("loop1", ws)).toBeUndefined();
  });

  it("continues a hold silently at the same place, escalates a flag with news, lifts the rest", () => {
    const pool = new WithdrawnHolds(
      new Map([
        ["a", w("c")],
        ["b", w("c")],
        ["r", w()],
      ]),
    );
    const place = { siteId: "s", lotId: "L", unitId: "f1" };
    pool.add({ holdId: "a|L|f1", causeId: "a", status: "quarantined", ...place });
    pool.add({ holdId: "b|L|f2", causeId: "b", status: "flagged", ...place, unitId: "f2" });
    pool.add({ holdId: "r|L|f1", causeId: "r", status: "flagged", ...place });
    expect(pool.continueWith(place, "c", "quarantined")).toMatchObject({
      hold: { holdId: "a|L|f1" },
      silent: true,
    });
    expect(pool.continueWith({ ...place, unitId: "f2" }, "c", "quarantined")).toMatchObject({
      silent: false,
    });
    expect(pool.continueWith(place, "other", "flagged")).toBeUndefined();
    expect([...pool.uncontinued().values()].flat().map((h) => h.holdId)).toEqual(["r|L|f1"]);
    expect(pool.continued().map((c) => c.holdId)).toEqual(["a|L|f1", "b|L|f2"]);
  });
});

describe("transfer verdict", () => {
  const elig = composeEligibility("s", "L", facts({ used: { high: 50, low: 0 } }), T0);
  const q = {
    lotId: "L",
    quantity: 2,
    fromUnitId: "f1",
    expectedTransitMinutes: 30,
    boxClass: "none" as const,
  };

  it("denies a route whose worst-case exposure exceeds the budget left, and stock not there", () => {
    expect(transferVerdict(q, { quantity: 5 }, elig, T0).reasons).toEqual([
      "remaining high budget 10 min is below the route's worst-case exposure 30 min (none, 30 min)",
    ]);
    expect(transferVerdict({ ...q, boxClass: "qualified-8h" }, { quantity: 5 }, elig, T0)).toEqual({
      allow: true,
      reasons: [],
    });
    expect(
      transferVerdict({ ...q, quantity: 9, boxClass: "qualified-8h" }, { quantity: 5 }, elig, T0).allow,
    ).toBe(false);
    expect(transferVerdict(q, undefined, undefined, T0)).toEqual({
      allow: false,
      reasons: ["lot L is not in f1"],
    });
  });
});
