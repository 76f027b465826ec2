/**
 * The ERP bridge end to end, every peer real: the bridge's flow file in a real Node-RED 5;
 * the gateway (embedded broker with ACLs, SQLite, lots module, REST API) with two simulated
 * stores (the fleet generator); a fake ERP over HTTP that fails on purpose.
 *
 *   ERP ──documents, files──▶ Node-RED ──movements──▶ gateway ──lot events, eligibility──▶ Node-RED ──hold/unhold──▶ ERP
 *
 * Retries use the bridge's own (real) clock with a small base delay; nothing is timed, every
 * wait is for an event (a request at the ERP, an answer, a counter of the flow).
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { GatewayRuntime } from "@coldtrace/gateway";
import { Fleet } from "@coldtrace/simulators";
import ExcelJS from "exceljs";
import iconv from "iconv-lite";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startTestGateway, type TestGateway } from "./harness/gateway.ts";
import { type NodeRed, type NodeRedOptions, startNodeRed, writeFlow } from "./harness/node-red.ts";
import { type HttpPeer, type PeerRequest, startHttpPeer } from "./harness/peers.ts";

const MIN = 60_000;
const INBOUND = "erp-inbound-token-for-tests";
const SKU = "REAG-CRP-100";

interface Ctx {
  dir: string;
  gw: GatewayRuntime;
  fleet: Fleet;
  nr: NodeRed;
  nrOptions: NodeRedOptions;
  erp: HttpPeer;
  t: TestGateway;
  prefix: string;
  s1: string;
  s2: string;
  start: number;
  clientId: string;
  /** Lot events as the gateway published them, seen by an independent monitor. */
  lotEvents: Array<{ topic: string; payload: Buffer; type: string; lotId: string }>;
}
const ctx = {} as Ctx;
let monitorClient: MqttClient | undefined;
const lotA = () => `A-${ctx.prefix}/01`;
const lotB = () => `B-${ctx.prefix}/02`;

const api = <T = unknown>(method: string, url: string, body?: unknown) => ctx.t.api<T>(method, url, body);

async function bridge<T = Record<string, unknown>>(
  method: string,
  url: string,
  body?: unknown,
  contentType = "application/json",
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${ctx.nr.url}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${INBOUND}`,
      ...(body === undefined ? {} : { "content-type": contentType }),
    },
    ...(body === undefined ? {} : { body: Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function until(
  what: string,
  pred: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function startBridge(): Promise<void> {
  const subscribed = ctx.t.subscribed(ctx.clientId, ["ct/v1/+/events/lot/+", "ct/v1/+/eligibility/+"]);
  ctx.nr = await startNodeRed(ctx.nrOptions);
  await subscribed;
}

/** "2026-11-24 09:30:00" in Shanghai: how many Chinese ERPs write times. */
function shanghai(t: number): string {
  return new Date(t + 8 * 3_600_000).toISOString().slice(0, 19).replace("T", " ");
}

const holdsOf = (lotId: string) => (r: PeerRequest) => (r.body as { batchNo?: string }).batchNo === lotId;

beforeAll(async () => {
  ctx.prefix = `erp${randomBytes(3).toString("hex")}`;
  ctx.s1 = `${ctx.prefix}-1`;
  ctx.s2 = `${ctx.prefix}-2`;
  ctx.clientId = `${ctx.prefix}-bridge`;
  ctx.t = await startTestGateway("erp-e2e", `gw-${ctx.prefix}`, [
    ...[ctx.s1, ctx.s2].map((site) => ({
      username: `${site}-pi`,
      role: "agent" as const,
      siteIds: [site],
      agentId: `${site}-pi`,
    })),
    { username: "erp-bridge", role: "planner", siteIds: ["*"] },
    { username: "watcher", role: "monitor", siteIds: ["*"] },
  ]);
  ctx.gw = ctx.t.gw;
  ctx.dir = ctx.t.dir;
  const secrets = ctx.t.secrets;
  const monitor = secrets.get("erp-bridge")!;
  const watcher = secrets.get("watcher")!;
  const token = ctx.t.token;
  ctx.erp = await startHttpPeer();
  ctx.lotEvents = [];
  monitorClient = await connectAsync(ctx.gw.brokerUrl, {
    clientId: `${ctx.prefix}-watcher`,
    username: "watcher",
    password: watcher,
    reconnectPeriod: 0,
  });
  monitorClient.on("message", (topic, payload) => {
    const e = JSON.parse(payload.toString("utf8")) as { type: string; lotId: string };
    ctx.lotEvents.push({ topic, payload, type: e.type, lotId: e.lotId });
  });
  await monitorClient.subscribeAsync("ct/v1/+/events/lot/+", { qos: 1 });
  const mapping = {
    hold: { url: `${ctx.erp.url}/api/stock/hold` },
    unhold: { url: `${ctx.erp.url}/api/stock/unhold` },
    fields: { lotId: "batchNo", siteId: "warehouseCode", quantity: "qty", eventId: "requestId" },
  };
  const mappingFile = path.join(ctx.dir, "holds.yaml");
  await writeFile(mappingFile, stringify(mapping));
  const userDir = path.join(ctx.dir, "node-red");
  await mkdir(userDir, { recursive: true });
  ctx.nrOptions = {
    userDir,
    flow: "erp-bridge/flows.json",
    credentials: { "ct-erp-broker": { user: "erp-bridge", password: monitor } },
    env: {
      COLDTRACE_MQTT_URL: ctx.gw.brokerUrl,
      COLDTRACE_ERP_CLIENT_ID: ctx.clientId,
      COLDTRACE_GATEWAY_URL: ctx.gw.apiUrl!,
      COLDTRACE_GATEWAY_TOKEN: token,
      COLDTRACE_ERP_INBOUND_TOKEN: INBOUND,
      COLDTRACE_ERP_TOKEN: "erp-api-token",
      COLDTRACE_ERP_HOLDS_MAPPING: mappingFile,
      COLDTRACE_ERP_TIME_ZONE: "Asia/Shanghai",
      COLDTRACE_ERP_RETRY_BASE_MS: "20",
      COLDTRACE_ERP_MAX_ATTEMPTS: "8",
      COLDTRACE_ERP_POLL_MS: "25",
    },
  };
  await writeFlow(ctx.nrOptions);
  await startBridge();

  ctx.start = Math.floor(Date.now() / MIN) * MIN - 6 * 60 * MIN;
  ctx.fleet = new Fleet({
    url: ctx.gw.brokerUrl,
    sites: 2,
    units: 3,
    probes: 1,
    sitePrefix: ctx.prefix,
    intervalMs: MIN,
    startAt: ctx.start,
    excursions: [
      // Store 1, fridge 1: action-level excursion at minute 60 (lot A inside).
      { site: 0, unit: 0, afterMs: 60 * MIN, durationMs: 20 * MIN, tempC: 14 },
      // Store 2, fridge 1: the same at minute 200 (lot B received there by transfer).
      { site: 1, unit: 0, afterMs: 200 * MIN, durationMs: 20 * MIN, tempC: 14 },
    ],
    credentials: (a) => ({ username: a.agentId, password: secrets.get(a.agentId)! }),
  });
  await ctx.fleet.start();
  await until("both births", () => (ctx.gw.metrics.messagesByKind.get("birth") ?? 0) >= 2);
  expect(
    (
      await api("PUT", "/lots/products", {
        sku: SKU,
        name: "CRP reagent",
        storageClass: "2-8C",
        budgetMinutes: { high: 10, low: null },
      })
    ).status,
  ).toBe(200);
  for (const lotId of [lotA(), lotB()]) {
    expect(
      (await api("PUT", "/lots/lots", { lotId, sku: SKU, expiresAt: Date.now() + 200 * 24 * 60 * MIN }))
        .status,
    ).toBe(200);
  }
});

afterAll(async () => {
  await monitorClient?.endAsync();
  await ctx.fleet?.stop().catch(() => {});
  await ctx.nr?.stop();
  await ctx.t?.stop();
  await ctx.erp?.close();
});

describe("ERP bridge flow in Node-RED 5", () => {
  it("turns goods receipts, transfers, dispensing and returns into the gateway's movements", async () => {
    const u1 = `${ctx.s1}-u1`;
    const u2 = `${ctx.s1}-u2`;
    const box = `${ctx.s1}-u3`;
    const remote = `${ctx.s2}-u1`;
    const docs = [
      {
        documentId: `GR-${ctx.prefix}`,
        type: "goods_receipt",
        storeId: ctx.s1,
        postedAt: shanghai(ctx.start + 5 * MIN),
        operator: "wang.li",
        lines: [
          {
            line: 1,
            sku: SKU,
            productName: "超敏C反应蛋白测定试剂盒",
            lotNo: lotA(),
            quantity: 10,
            location: u1,
          },
          { line: 2, sku: SKU, lotNo: lotB(), quantity: 6, location: u2 },
        ],
      },
      {
        documentId: `DS-${ctx.prefix}`,
        type: "dispensing",
        storeId: ctx.s1,
        postedAt: new Date(ctx.start + 8 * MIN).toISOString(),
        lines: [{ line: 1, sku: SKU, lotNo: lotA(), quantity: 2, location: u1 }],
      },
      {
        documentId: `RT-${ctx.prefix}`,
        type: "return",
        storeId: ctx.s1,
        postedAt: ctx.start + 9 * MIN,
        lines: [{ line: 1, sku: SKU, lotNo: lotA(), quantity: 1, location: u1 }],
      },
      {
        documentId: `TO-${ctx.prefix}`,
        type: "transfer_dispatch",
        storeId: ctx.s1,
        postedAt: ctx.start + 10 * MIN,
        lines: [{ line: 1, sku: SKU, lotNo: lotB(), quantity: 4, location: u2, transitBoxId: box }],
      },
      {
        documentId: `TR-${ctx.prefix}`,
        type: "transfer_receipt",
        storeId: ctx.s2,
        postedAt: ctx.start + 40 * MIN,
        lines: [{ line: 1, sku: SKU, lotNo: lotB(), quantity: 4, location: remote, transitBoxId: box }],
      },
    ];
    for (const d of docs) {
      const r = await bridge("POST", "/erp/documents", d);
      expect(r, d.documentId).toMatchObject({
        status: 201,
        body: { status: "recorded", recorded: d.lines.length },
      });
    }
    // Sent twice (an ERP retrying after a timeout): the same movements, nothing new.
    expect(await bridge("POST", "/erp/documents", docs[0])).toMatchObject({
      status: 201,
      body: { recorded: 0, duplicates: 2 },
    });

    const at = (unitId: string, m: number) =>
      api<Array<{ lotId: string; quantity: number }>>(
        "GET",
        `/lots/occupancy?unitId=${unitId}&at=${ctx.start + m * MIN}`,
      );
    expect((await at(u1, 6)).body).toEqual([expect.objectContaining({ lotId: lotA(), quantity: 10 })]);
    expect((await at(u1, 20)).body).toEqual([expect.objectContaining({ lotId: lotA(), quantity: 9 })]);
    expect((await at(u2, 20)).body).toEqual([expect.objectContaining({ lotId: lotB(), quantity: 2 })]);
    expect((await at(box, 20)).body).toEqual([expect.objectContaining({ lotId: lotB(), quantity: 4 })]);
    expect((await at(remote, 41)).body).toEqual([expect.objectContaining({ lotId: lotB(), quantity: 4 })]);
  });

  it("answers a bad document with the field at fault, keeps it, and records it once corrected", async () => {
    const bad = {
      documentId: `GR-BAD-${ctx.prefix}`,
      type: "goods_receipt",
      storeId: ctx.s1,
      postedAt: ctx.start + 11 * MIN,
      lines: [{ line: 1, sku: SKU, quantity: 1, location: `${ctx.s1}-u1` }],
    };
    const r = await bridge<{ code: string; message: string; kept: boolean }>("POST", "/erp/documents", bad);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: "CT_ERP_INVALID", kept: true });
    expect(r.body.message).toContain("lines[0].lotNo");
    const typo = {
      ...bad,
      documentId: `GR-TYPO-${ctx.prefix}`,
      lines: [{ line: 1, sku: SKU, lotNo: lotA(), quantity: 1, location: "fridge-9" }],
    };
    const t = await bridge<{ message: string }>("POST", "/erp/documents", typo);
    expect(t.status).toBe(422);
    expect(t.body.message).toContain('lines[0].location: unknown unit "fridge-9"');
    const kept = await bridge<Array<{ id: string; reason: string; status: string }>>("GET", "/erp/rejected");
    expect(kept.body.map((k) => k.id)).toEqual(
      expect.arrayContaining([`doc-GR-BAD-${ctx.prefix}`, `doc-GR-TYPO-${ctx.prefix}`]),
    );
    expect(kept.body.find((k) => k.id === `doc-GR-TYPO-${ctx.prefix}`)).toMatchObject({
      status: "rejected",
      reason: expect.stringContaining("fridge-9"),
    });
    // Retried as it is: still refused, still kept.
    expect((await bridge("POST", `/erp/rejected/doc-GR-TYPO-${ctx.prefix}/retry`)).status).toBe(422);
    // Corrected in the ERP and sent again under the same documentId: recorded, no longer kept.
    const fixed = { ...bad, lines: [{ ...bad.lines[0], lotNo: lotA() }] };
    expect(await bridge("POST", "/erp/documents", fixed)).toMatchObject({
      status: 201,
      body: { recorded: 1 },
    });
    const after = await bridge<Array<{ id: string }>>("GET", "/erp/rejected");
    expect(after.body.map((k) => k.id)).not.toContain(`doc-GR-BAD-${ctx.prefix}`);
    expect(after.body.map((k) => k.id)).toContain(`doc-GR-TYPO-${ctx.prefix}`);
  });

  it("takes a GB18030 CSV with Chinese product names and its .xlsx twin as the same movements", async () => {
    const header =
      "movementId,kind,siteId,occurredAt,lotId,sku,productName,quantity,fromUnitId,toUnitId,reference,actor";
    const rows = [
      [
        `csv-${ctx.prefix}-1`,
        "receive",
        ctx.s1,
        shanghai(ctx.start + 12 * MIN),
        lotA(),
        SKU,
        "超敏C反应蛋白测定试剂盒",
        "3",
        "",
        `${ctx.s1}-u1`,
        "入库单-9",
        "王丽",
      ],
      [
        `csv-${ctx.prefix}-2`,
        "dispense",
        ctx.s1,
        shanghai(ctx.start + 13 * MIN),
        lotA(),
        SKU,
        "超敏C反应蛋白测定试剂盒",
        "1",
        `${ctx.s1}-u1`,
        "",
        "",
        "赵敏",
      ],
    ];
    const csv = `${[header, ...rows.map((r) => r.join(","))].join("\r\n")}\r\n`;
    const gb = iconv.encode(csv, "gb18030");
    const r = await bridge("POST", "/erp/files", gb, "text/csv");
    expect(r).toMatchObject({ status: 201, body: { status: "recorded", ok: true, rows: 2, imported: 2 } });

    const wb = new ExcelJS.Workbook();
    const ws = wb.addWorksheet("出库入库");
    ws.addRow(header.split(","));
    for (const row of rows) ws.addRow(row.map((v, i) => (i === 7 ? Number(v) : v === "" ? null : v)));
    const xlsx = Buffer.from(await wb.xlsx.writeBuffer());
    const x = await bridge(
      "POST",
      "/erp/files",
      xlsx,
      "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    );
    // The same rows, read from the spreadsheet: recognised as the movements already recorded.
    expect(x).toMatchObject({ status: 201, body: { ok: true, rows: 2, imported: 0, duplicates: 2 } });

    const broken = iconv.encode(
      `${header}\r\nx-1,receive,${ctx.s1},yesterday,${lotA()},${SKU},,0,,${ctx.s1}-u1,,\r\n`,
      "gb18030",
    );
    const b = await bridge<{ issues: Array<{ row: number; column: string }> }>(
      "POST",
      "/erp/files",
      broken,
      "text/csv; charset=GBK",
    );
    expect(b.status).toBe(422);
    expect(b.body.issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ row: 2, column: "occurredAt" }),
        expect.objectContaining({ row: 2, column: "quantity" }),
      ]),
    );
    expect(
      (await bridge<Array<{ kind: string }>>("GET", "/erp/rejected")).body.some((k) => k.kind === "file"),
    ).toBe(true);
  });

  it("holds a quarantined lot in the ERP through five 500s, and unholds it on release", async () => {
    let failures = 0;
    ctx.erp.respond = (req) => {
      if (req.path === "/api/stock/hold" && holdsOf(lotA())(req as PeerRequest) && failures < 5) {
        failures++;
        return { status: 500, body: { error: "ERP busy" } };
      }
      return { status: 200, body: { ok: true } };
    };
    for (let m = 20; m <= 120; m += 20) await ctx.fleet.advanceTo(ctx.start + m * MIN);
    const ok = await ctx.erp.requests.waitFor(
      (r) => r.path === "/api/stock/hold" && holdsOf(lotA())(r) && r.status === 200,
      "the hold of lot A, answered 200",
    );
    const attempts = ctx.erp.requests.filter((r) => r.path === "/api/stock/hold" && holdsOf(lotA())(r));
    expect(attempts.map((r) => r.status)).toEqual([500, 500, 500, 500, 500, 200]);
    expect(new Set(attempts.map((r) => r.headers["idempotency-key"])).size).toBe(1);
    expect(ok.headers.authorization).toBe("Bearer erp-api-token");
    expect(ok.body).toMatchObject({
      action: "hold",
      warehouseCode: ctx.s1,
      batchNo: lotA(),
      sku: SKU,
      status: "quarantined",
    });
    expect((ok.body as { requestId: string }).requestId).toBe(ok.headers["idempotency-key"]);

    expect(
      (
        await api("POST", "/lots/release", {
          siteId: ctx.s1,
          lotId: lotA(),
          by: "qa.zhang",
          reason: "stability data cover the excursion",
        })
      ).status,
    ).toBe(200);
    const unhold = await ctx.erp.requests.waitFor(
      (r) => r.path === "/api/stock/unhold" && holdsOf(lotA())(r),
      "unhold of lot A",
    );
    expect(unhold.body).toMatchObject({ action: "unhold", status: "released" });
  });

  it("calls the ERP exactly once per event across a Node-RED restart, and dead-letters what the ERP refuses until replayed", async () => {
    await ctx.nr.stop();
    // While Node-RED is down, lot B is quarantined at store 2: the broker keeps the event for
    // the bridge's persistent session. The ERP does not know store 2's warehouse yet.
    ctx.erp.respond = (req) =>
      holdsOf(lotB())(req as PeerRequest)
        ? { status: 400, body: { error: "unknown warehouse" } }
        : { status: 200, body: { ok: true } };
    for (let m = 140; m <= 240; m += 20) await ctx.fleet.advanceTo(ctx.start + m * MIN);
    await until(
      "lot B quarantined",
      async () =>
        (
          await api<Array<{ status: string }>>(
            "GET",
            `/lots/eligibility?siteId=${ctx.s2}&lotId=${encodeURIComponent(lotB())}`,
          )
        ).body[0]?.status === "quarantined",
    );
    const before = ctx.erp.requests.items.length;

    await startBridge();
    const refused = await ctx.erp.requests.waitFor(
      (r) => holdsOf(lotB())(r),
      "the hold of lot B, queued while Node-RED was down",
    );
    expect(refused.status).toBe(400);
    // Every retained eligibility state was seen again after the restart …
    const states = [
      ...(await api<unknown[]>("GET", `/lots/eligibility?siteId=${ctx.s1}`)).body,
      ...(await api<unknown[]>("GET", `/lots/eligibility?siteId=${ctx.s2}`)).body,
    ].length;
    const holdsState = async () =>
      (await bridge<{ eligibility: number; dead: number; lotEvents: number }>("GET", "/erp/holds/state"))
        .body;
    await until("retained states processed", async () => (await holdsState()).eligibility >= states);
    // The gateway's outbox resends lot A's events (as after a gateway restart: same eventIds).
    const resent = ctx.lotEvents.filter(
      (e) => e.lotId === lotA() && (e.type === "lot.quarantined" || e.type === "lot.released"),
    );
    expect(resent.length).toBe(2);
    const seen = await holdsState();
    for (const e of resent) await ctx.gw.connection.client.publishAsync(e.topic, e.payload, { qos: 1 });
    await until(
      "resent lot events processed",
      async () => (await holdsState()).lotEvents >= seen.lotEvents + 2,
    );
    // None of the retained states, nor the resent events, made a second call.
    expect(ctx.erp.requests.items.slice(before).filter((r) => !holdsOf(lotB())(r))).toEqual([]);

    const dead = await bridge<Array<{ eventId: string; lastError: string; lotId: string }>>(
      "GET",
      "/erp/dead-letters",
    );
    expect(dead.body).toEqual([
      expect.objectContaining({ lotId: lotB(), lastError: expect.stringContaining("400") }),
    ]);
    ctx.erp.respond = () => ({ status: 200, body: { ok: true } }); // the ERP's warehouse master fixed
    expect(
      (await bridge("POST", `/erp/dead-letters/${encodeURIComponent(dead.body[0]!.eventId)}/replay`)).status,
    ).toBe(202);
    await ctx.erp.requests.waitFor(
      (r) => holdsOf(lotB())(r) && r.status === 200,
      "the replayed hold of lot B",
    );
    await until("dead-letter list empty", async () => (await holdsState()).dead === 0);

    // Exactly one successful call per event, over the whole run.
    const success = ctx.erp.requests.filter((r) => r.status === 200).map((r) => r.headers["idempotency-key"]);
    expect(success.length).toBeGreaterThanOrEqual(3);
    expect(new Set(success).size).toBe(success.length);
  });
});
