/**
 * The ERP bridge's rules without Node-RED: documents → movements (every field at fault named),
 * lot events and eligibility → hold/unhold calls, the mapping's field names, the durable
 * queue's once-per-id and in-order-per-lot guarantees.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Eligibility, LotEvent } from "@coldtrace/protocol";
import { afterAll, describe, expect, it } from "vitest";
import { checkDocument } from "../src/erp/documents.ts";
import { callForEligibility, callForLotEvent, parseHoldsMapping, requestBody } from "../src/erp/holds.ts";
import { FlowsStore } from "../src/store.ts";

const T = Date.UTC(2026, 10, 20, 0, 0, 0);

describe("ERP documents", () => {
  const doc = {
    documentId: "TO-2026-5521",
    type: "transfer_dispatch",
    storeId: "store-12",
    postedAt: "2026-11-20 08:00:00",
    operator: "wang.li",
    lines: [
      {
        line: 1,
        sku: "REAG-CRP-100",
        productName: "超敏C反应蛋白",
        lotNo: "L2026/0412",
        quantity: 4,
        location: "fridge-2",
        transitBoxId: "box-7",
      },
    ],
  };
  it("become contract movements, local times read in the bridge's zone", () => {
    const r = checkDocument(doc, "Asia/Shanghai");
    expect(r).toEqual({
      ok: true,
      document: expect.anything(),
      movements: [
        {
          v: 1,
          movementId: "erp-TO-2026-5521-1",
          kind: "load",
          siteId: "store-12",
          occurredAt: T,
          lotId: "L2026/0412",
          sku: "REAG-CRP-100",
          quantity: 4,
          fromUnitId: "fridge-2",
          toUnitId: "box-7",
          reference: "TO-2026-5521",
          actor: "store-12/wang.li",
        },
      ],
    });
    const receipt = checkDocument({ ...doc, type: "transfer_receipt", storeId: "store-3" }, "Asia/Shanghai");
    expect(receipt.ok && receipt.movements[0]).toMatchObject({
      kind: "unload",
      siteId: "store-3",
      fromUnitId: "box-7",
      toUnitId: "fridge-2",
    });
  });
  it("name every field at fault", () => {
    const r = checkDocument(
      {
        ...doc,
        postedAt: "yesterday",
        lines: [
          { line: 1, sku: "S", quantity: 0, location: "fridge-2" },
          { line: 1, sku: "S", lotNo: "L", quantity: 1, location: "fridge 2", transitBoxId: "box-7" },
        ],
      },
      "Asia/Shanghai",
    );
    expect(r.ok ? [] : r.issues.map((i) => i.path)).toEqual([
      "lines[0].lotNo",
      "lines[0].quantity",
      "lines[1].location",
    ]);
    // Cross-line checks run once every line is well-formed (zod runs refinements on valid shapes).
    const cross = checkDocument(
      { ...doc, lines: [doc.lines[0], { ...doc.lines[0], transitBoxId: undefined }] },
      "Asia/Shanghai",
    );
    expect(cross.ok ? [] : cross.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      "lines[1].line: repeats line 1",
      "lines[1].transitBoxId: is required for a transfer_dispatch (the monitored box the stock travels in)",
    ]);
    const t = checkDocument({ ...doc, postedAt: "yesterday" }, "Asia/Shanghai");
    expect(t.ok ? "" : t.issues[0]!.message).toContain('got "yesterday"');
    expect(checkDocument({ ...doc, type: "goods_receipt" }, "UTC")).toMatchObject({
      ok: false,
      issues: [{ path: "lines[0].transitBoxId", message: "must be absent for a goods_receipt" }],
    });
  });
});

describe("ERP holds", () => {
  const m = parseHoldsMapping({
    hold: { url: "https://erp.test/hold" },
    unhold: { url: "https://erp.test/unhold", method: "PUT" },
    events: { "lot.flagged_for_review": "hold" },
    fields: { lotId: "batchNo", siteId: "warehouseCode" },
  });
  const ev = (type: LotEvent["type"]): LotEvent => ({
    v: 1,
    eventId: `lot-store-12-L-${type}`,
    siteId: "store-12",
    at: T,
    type,
    lotId: "L2026/0412",
    sku: "S",
    quantity: 4,
    reason: "r",
    excursionIds: [],
    lotSeq: 3,
  });
  it("map lot events to the configured action, with the ERP's field names", () => {
    expect(callForLotEvent(m, ev("lot.quarantined"))?.action).toBe("hold");
    expect(callForLotEvent(m, ev("lot.flagged_for_review"))?.action).toBe("hold");
    expect(callForLotEvent(m, ev("lot.released"))?.action).toBe("unhold");
    expect(callForLotEvent(m, ev("lot.returned_to_supplier"))).toBeUndefined();
    expect(requestBody(m, callForLotEvent(m, ev("lot.rejected"))!)).toEqual({
      eventId: "lot-store-12-L-lot.rejected",
      action: "hold",
      warehouseCode: "store-12",
      batchNo: "L2026/0412",
      sku: "S",
      quantity: 4,
      reason: "r",
      status: "rejected",
      occurredAt: "2026-11-20T00:00:00.000Z",
    });
    expect(() => parseHoldsMapping({ hold: { url: "ftp://x" }, unhold: { url: "https://x" } })).toThrow(
      /hold\.url/,
    );
  });
  it("act on eligibility only when it changed while the status did not", () => {
    const s = (eligible: boolean, status: Eligibility["status"], updatedAt = T): Eligibility => ({
      v: 1,
      siteId: "store-12",
      lotId: "L1",
      sku: "S",
      status,
      eligible,
      expiresAt: T,
      transferableQuantity: eligible ? 4 : 0,
      remainingBudgetMinutes: { high: 10, low: null },
      reasons: eligible ? [] : ["expired"],
      updatedAt,
      lotSeq: 2,
    });
    expect(
      callForEligibility(m, s(false, "available"), { eligible: true, status: "available" }),
    ).toMatchObject({ action: "hold", reason: "expired" });
    expect(
      callForEligibility(m, s(true, "available"), { eligible: false, status: "available" }),
    ).toMatchObject({ action: "unhold" });
    expect(
      callForEligibility(m, s(false, "quarantined"), { eligible: true, status: "available" }),
    ).toBeUndefined();
    expect(
      callForEligibility(m, s(true, "released"), { eligible: false, status: "quarantined" }),
    ).toBeUndefined();
    expect(callForEligibility(m, s(true, "available"), undefined)).toBeUndefined();
    expect(callForEligibility(m, s(false, "released"), undefined)).toMatchObject({ action: "hold" });
    // The same state again (retained, after a restart) is the same call id.
    const a = callForEligibility(m, s(false, "available"), undefined)!;
    expect(callForEligibility(m, s(false, "available"), undefined)!.eventId).toBe(a.eventId);
  });
});

describe("durable work queue", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "ct-flows-store-"));
  afterAll(() => rm(dir, { recursive: true, force: true }));
  it("keeps each id once across reopening, and works one lot's rows strictly in order", () => {
    const file = path.join(dir, "q.db");
    let store = FlowsStore.open(file);
    let q = store.queue<{ n: number }>("holds");
    expect(q.add("e1", { n: 1 }, 0, "lot-a")).toBe(true);
    expect(q.add("e2", { n: 2 }, 0, "lot-a")).toBe(true);
    expect(q.add("e3", { n: 3 }, 0, "lot-b")).toBe(true);
    expect(q.due(0).map((i) => i.id)).toEqual(["e1", "e3"]);
    q.retry("e1", "500", 100, 0);
    expect(q.due(50).map((i) => i.id)).toEqual(["e3"]); // e2 waits behind e1
    q.dead("e1", "500 (attempt 8)", 100);
    expect(q.due(1000).map((i) => i.id)).toEqual(["e3"]);
    expect(q.blockedBehind("e1")).toBe(1);
    store.close();
    store = FlowsStore.open(file);
    q = store.queue<{ n: number }>("holds");
    expect(q.add("e1", { n: 1 }, 0, "lot-a")).toBe(false);
    expect(q.replay("e1", 2000)).toBe(true);
    expect(q.due(2000).map((i) => [i.id, i.attempts])).toEqual([
      ["e1", 0],
      ["e3", 0],
    ]);
    q.done("e1", 2001);
    expect(q.due(2001).map((i) => i.id)).toEqual(["e2", "e3"]);
    store.close();
  });
});
