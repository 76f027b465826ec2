/**
 * The LotStore contract, run on SQLite and PostgreSQL (store.test.ts): every statement of the
 * lots module behaves the same on both — master data, movements (idempotent by id), the ledger,
 * causes (open, closed, withdrawn), exposures, budgets, holds and their decisions, per-site
 * state (lotSeq, published content), the lists the resync and the expiry sweep page through.
 */
import type { Movement } from "@coldtrace/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lotIntervals } from "../../src/lots/ledger.ts";
import type { Product } from "../../src/lots/model.ts";
import { lotsMigrations } from "../../src/lots/schema.ts";
import { type LotCause, type LotExposure, LotStore } from "../../src/lots/store.ts";
import { type RecordDb, type SqlDatabase, sqlDatabase } from "../../src/storage/sql/database.ts";

const T0 = Date.UTC(2026, 10, 20, 8);
const MIN = 60_000;

const product: Product = {
  sku: "S-1",
  name: "CRP",
  storageClass: "2-8C",
  lowC: 2,
  highC: 8,
  budgetMinutes: { high: 60, low: null },
  absoluteMinC: null,
  absoluteMaxC: 30,
  doNotFreeze: false,
};

const mv = (
  p: Partial<Movement> & Pick<Movement, "movementId" | "kind" | "quantity" | "occurredAt">,
): Movement => ({ v: 1, siteId: "s1", lotId: "L/1", sku: "S-1", ...p }) as Movement;

export function lotStoreContract(
  name: string,
  makeDb: () => Promise<{ db: RecordDb; close(): Promise<void> }>,
): void {
  describe(`LotStore contract: ${name}`, () => {
    let handle: { db: RecordDb; close(): Promise<void> };
    let sql: SqlDatabase;
    let store: LotStore;

    beforeAll(async () => {
      handle = await makeDb();
      sql = sqlDatabase(handle.db);
      await sql.migrate("lots", lotsMigrations);
      store = new LotStore(sql);
    });
    afterAll(async () => handle?.close());

    it("keeps products and lots, and lists them in key order, paged", async () => {
      await store.upsertProduct(product, T0);
      await store.upsertProduct(
        { ...product, sku: "S-0", doNotFreeze: true, budgetMinutes: { high: null, low: 5 } },
        T0,
      );
      expect(await store.product("S-1")).toEqual(product);
      expect((await store.products()).map((p) => p.sku)).toEqual(["S-0", "S-1"]);
      expect(await store.products({ after: "S-0", limit: 5 })).toEqual([product]);
      expect(await store.product("nope")).toBeUndefined();
      await store.upsertLot(
        { lotId: "L/1", sku: "S-1", expiresAt: T0 + 60 * MIN, serialNumbers: ["a", "b"] },
        T0,
      );
      await store.ensureLot("L/1", "OTHER", T0); // known: unchanged
      await store.ensureLot("L/2", "S-0", T0);
      expect(await store.lot("L/1")).toEqual({
        lotId: "L/1",
        sku: "S-1",
        expiresAt: T0 + 60 * MIN,
        serialNumbers: ["a", "b"],
      });
      expect((await store.lots({ sku: "S-0" })).map((l) => l.lotId)).toEqual(["L/2"]);
      expect((await store.lots({ limit: 1 })).map((l) => l.lotId)).toEqual(["L/1"]);
    });

    it("records a movement once, by id, with all its fields", async () => {
      const m = mv({
        movementId: "m1",
        kind: "receive",
        quantity: 6,
        occurredAt: T0,
        toUnitId: "f1",
        reference: "PO-1",
      });
      expect(await store.insertMovement(m, T0)).toBe(true);
      expect(await store.insertMovement({ ...m, quantity: 9 }, T0)).toBe(false);
      expect(await store.movement("m1")).toEqual({
        movementId: "m1",
        kind: "receive",
        siteId: "s1",
        occurredAt: T0,
        lotId: "L/1",
        sku: "S-1",
        quantity: 6,
        toUnitId: "f1",
        reference: "PO-1",
      });
      await store.insertMovement(
        mv({
          movementId: "m2",
          kind: "move",
          quantity: 2,
          occurredAt: T0 + 30 * MIN,
          fromUnitId: "f1",
          toUnitId: "f2",
        }),
        T0,
      );
      expect([...(await store.movementsById(["m2", "m1", "nope"])).keys()].sort()).toEqual(["m1", "m2"]);
      expect((await store.movementsOf("L/1")).map((x) => x.movementId).sort()).toEqual(["m1", "m2"]);
    });

    it("replaces a lot's ledger and answers the occupancy questions from it", async () => {
      const intervals = lotIntervals(await store.movementsOf("L/1"));
      await store.replaceOccupancy("L/1", intervals);
      await store.replaceOccupancy("L/1", intervals); // replacing twice leaves one copy
      expect(await store.intervalsIn("f1", T0, T0 + 10 * MIN)).toEqual([
        { lotId: "L/1", siteId: "s1", quantity: 6, from: T0, to: T0 + 30 * MIN },
      ]);
      expect(await store.intervalsIn("f1", T0 + 30 * MIN, T0 + 30 * MIN)).toEqual([
        { lotId: "L/1", siteId: "s1", quantity: 4, from: T0 + 30 * MIN, to: null },
      ]);
      expect((await store.intervalsOf("L/1", "f1")).map((r) => r.quantity)).toEqual([6, 4]);
      expect(await store.occupantsAt("f2", T0 + 40 * MIN)).toEqual([
        { lotId: "L/1", siteId: "s1", quantity: 2 },
      ]);
      expect(await store.holdingsOf("L/1")).toEqual([
        { unitId: "f1", siteId: "s1", quantity: 4 },
        { unitId: "f2", siteId: "s1", quantity: 2 },
      ]);
      expect(await store.openSites("L/1")).toEqual(["s1"]);
      expect(await store.stock("s1", "L/1")).toBe(6);
      expect(await store.stockAtSite("s1")).toEqual(new Map([["L/1", 6]]));
      expect(await store.holdingIn("L/1", "f2")).toEqual({ siteId: "s1", quantity: 2 });
      expect(await store.holdingIn("L/1", "f9")).toBeUndefined();
      expect(await store.expiredWithStock(0, T0 + 61 * MIN)).toEqual([{ siteId: "s1", lotId: "L/1" }]);
      expect(await store.expiredWithStock(T0 + 61 * MIN, T0 + 120 * MIN)).toEqual([]);
    });

    it("keeps causes per unit: open, closed, withdrawn (out of force)", async () => {
      const open: LotCause = {
        causeId: "exc-1",
        cause: "excursion",
        siteId: "s1",
        unitId: "f1",
        from: T0 + 10 * MIN,
        to: null,
        lastAt: T0 + 20 * MIN,
        side: "high",
        tier: "action",
        withdrawnReason: null,
        supersededBy: null,
      };
      await store.upsertCause(open, T0);
      await store.upsertCause(
        { ...open, causeId: "exc-2", to: T0 + 15 * MIN, lastAt: T0 + 15 * MIN, tier: "alert" },
        T0,
      );
      await store.upsertCause(
        { ...open, causeId: "gap-1", cause: "gap", side: null, tier: null, unitId: "f2" },
        T0,
      );
      expect((await store.causesIn(["f1"])).map((c) => [c.causeId, c.to])).toEqual([
        ["exc-1", null],
        ["exc-2", T0 + 15 * MIN],
      ]);
      await store.upsertCause(
        { ...open, causeId: "exc-2", withdrawnReason: "superseded", supersededBy: "exc-1" },
        T0,
      );
      expect((await store.causesIn(["f1", "f2"])).map((c) => c.causeId)).toEqual(["exc-1", "gap-1"]);
      expect(await store.causesOf("exc-2")).toMatchObject([
        { withdrawnReason: "superseded", supersededBy: "exc-1" },
      ]);
      expect(await store.causesIn([])).toEqual([]);
      expect((await store.causesIn(["f1", "f2"], { openOnly: true })).map((c) => c.causeId)).toEqual([
        "exc-1",
        "gap-1",
      ]);
      await store.upsertCause({ ...open, causeId: "exc-old", to: T0 - 60 * MIN, from: T0 - 90 * MIN }, T0);
      expect((await store.causesIn(["f1"], { since: T0 })).map((c) => c.causeId)).toEqual(["exc-1"]);
      expect((await store.causesIn(["f1"])).map((c) => c.causeId)).toEqual(["exc-old", "exc-1"]);
    });

    it("replaces exposures per cause and lot, deletes a cause's, and keeps budgets per site", async () => {
      const e: LotExposure = {
        causeId: "exc-1",
        cause: "excursion",
        lotId: "L/1",
        unitId: "f1",
        siteId: "s1",
        from: T0 + 10 * MIN,
        to: T0 + 20 * MIN,
        quantity: 6,
        side: "high",
        tier: "action",
        minutesAbove: 10.5,
        minutesBelow: 0,
        peakC: 12.25,
        troughC: null,
        mktC: 11.5,
        coveredMs: 600_000,
        uncoveredMs: 0,
      };
      await store.replaceExposures("exc-1", "L/1", [e]);
      await store.replaceExposures("exc-1", "L/1", [
        e,
        { ...e, from: T0 + 30 * MIN, to: T0 + 31 * MIN, quantity: 4 },
      ]);
      await store.replaceExposures("exc-2", "L/1", [{ ...e, causeId: "exc-2" }]);
      expect((await store.exposuresOf("L/1")).map((x) => [x.causeId, x.from])).toEqual([
        ["exc-1", T0 + 10 * MIN],
        ["exc-2", T0 + 10 * MIN],
        ["exc-1", T0 + 30 * MIN],
      ]);
      expect((await store.exposuresOf("L/1"))[0]).toEqual(e);
      expect(await store.deleteExposuresOf("exc-2")).toEqual(["L/1"]);
      expect(await store.exposuresOf("L/1")).toHaveLength(2);
      expect(await store.replaceBudget("L/1", new Map([["s1", { high: 10.5, low: 0 }]]))).toEqual([]);
      expect(await store.replaceBudget("L/1", new Map([["s2", { high: 1, low: 2 }]]))).toEqual(["s1"]);
      expect(await store.budgetUsed("s2", "L/1")).toEqual({ high: 1, low: 2 });
      expect(await store.budgetUsed("s1", "L/1")).toBeUndefined();
      expect(await store.budgetsAtSite("s2")).toEqual(new Map([["L/1", { high: 1, low: 2 }]]));
    });

    it("keeps holds, their active subset, and decisions on them", async () => {
      const base = { siteId: "s1", lotId: "L/1", quantity: 6, reason: "r", createdAt: T0 };
      await store.insertHold({
        ...base,
        holdId: "exc-1|L/1|f1",
        unitId: "f1",
        causeId: "exc-1",
        status: "flagged",
      });
      await store.insertHold({
        ...base,
        holdId: "exc-3|L/1|f2",
        unitId: "f2",
        causeId: "exc-3",
        status: "quarantined",
        createdAt: T0 + 1,
      });
      await store.updateHold("exc-1|L/1|f1", { status: "quarantined", reason: "worse", quantity: 7 });
      expect(await store.hold("exc-1|L/1|f1")).toMatchObject({
        status: "quarantined",
        reason: "worse",
        quantity: 7,
        decidedBy: null,
      });
      expect((await store.activeHolds({ siteId: "s1", lotId: "L/1" })).map((h) => h.causeId)).toEqual([
        "exc-1",
        "exc-3",
      ]);
      expect((await store.activeHolds({ causeId: "exc-3" })).map((h) => h.unitId)).toEqual(["f2"]);
      expect([...(await store.activeHoldsAtSite("s1")).keys()]).toEqual(["L/1"]);
      expect(
        await store.decideHolds(
          { siteId: "s1", lotId: "L/1", holdIds: ["exc-3|L/1|f2"] },
          { status: "lifted", by: "system", reason: "withdrawn", at: T0 + 5 },
        ),
      ).toBe(1);
      expect(
        await store.decideHolds(
          { siteId: "s1", lotId: "L/1", holdIds: [] },
          { status: "released", by: "x", reason: "y", at: 0 },
        ),
      ).toBe(0);
      expect(
        await store.decideHolds(
          { siteId: "s1", lotId: "L/1" },
          { status: "released", by: "qa", reason: "ok", at: T0 + 6 },
        ),
      ).toBe(1);
      expect(
        (await store.holds({ lotId: "L/1" })).map((h) => [h.causeId, h.status, h.decidedBy, h.decidedAt]),
      ).toEqual([
        ["exc-1", "released", "qa", T0 + 6],
        ["exc-3", "lifted", "system", T0 + 5],
      ]);
      expect(await store.activeHolds({ lotId: "L/1" })).toEqual([]);
    });

    it("numbers lot events per site, remembers the published state, lists published pairs in order", async () => {
      expect(await store.nextLotSeq("s1", "L/1", T0)).toBe(1);
      expect(await store.nextLotSeq("s1", "L/1", T0)).toBe(2);
      await store.setStatus("s1", "L/1", "released", T0);
      expect(await store.markPublished("s1", "L/1", "{a}", T0)).toBe(1);
      expect(await store.markPublished("s1", "L/1", "{b}", T0)).toBe(2);
      expect(await store.siteState("s1", "L/1")).toEqual({
        status: "released",
        lotSeq: 2,
        eligVersion: 2,
        published: "{b}",
      });
      await store.markPublished("s0", "L/9", "{c}", T0);
      await store.setStatus("s3", "L/9", "rejected", T0); // a state, never published
      expect(await store.publishedSiteLots({ limit: 10 })).toEqual([
        { siteId: "s0", lotId: "L/9" },
        { siteId: "s1", lotId: "L/1" },
      ]);
      expect(await store.publishedSiteLots({ after: { siteId: "s0", lotId: "L/9" }, limit: 10 })).toEqual([
        { siteId: "s1", lotId: "L/1" },
      ]);
      expect([...(await store.siteStates("s1")).keys()]).toEqual(["L/1"]);
      expect(await store.sitesOf("L/9")).toEqual(["s0", "s3"]);
      expect([...(await store.lotsAtSite("s1")).keys()]).toEqual(["L/1"]);
    });

    it("runs inside a transaction: what it wrote rolls back with it", async () => {
      await expect(
        sql.transaction(async (tx) => {
          const inTx = new LotStore(tx);
          await inTx.upsertProduct({ ...product, sku: "S-TX" }, T0);
          expect(await inTx.product("S-TX")).toBeDefined();
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      expect(await store.product("S-TX")).toBeUndefined();
    });
  });
}
