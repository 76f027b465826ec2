/**
 * End to end for the lots module inside the running gateway: master data over REST, a lot
 * received into a fridge by an ERP account publishing a contract movement over MQTT, then an
 * action-level excursion in that fridge from the fleet generator (a simulated edge agent).
 * An independent planner account must see `lot.quarantined` and the retained eligibility
 * `eligible: false`, and GET /api/v1/lots/eligibility must say the same.
 *
 * Embedded aedes (ACLs on) with SQLite and with PostgreSQL records, and the machine's
 * Mosquitto (external mode, unique site ids, retained topics cleared afterwards).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  decodeMessage,
  type Eligibility,
  encodePayload,
  formatTopic,
  type LotEvent,
  type Movement,
  topicFilters,
} from "@coldtrace/protocol";
import { Fleet } from "@coldtrace/simulators";
import { freshPgSchema, mqttUrl, type PgSchema, requireService } from "@coldtrace/testkit";
import { connectAsync, type IClientOptions, type MqttClient } from "mqtt";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { generateToken } from "../../src/api/auth.ts";
import { type GatewayRuntime, startGateway } from "../../src/app/gateway.ts";
import { CredentialStore } from "../../src/broker/credentials.ts";
import { builtinExtensions } from "../../src/cli/builtins.ts";
import { parseGatewayConfig } from "../../src/config/load.ts";
import type { LotsExtension } from "../../src/lots/module.ts";
import { until } from "../ingest/harness.ts";

const MIN = 60_000;
const LOT = "L2026/0412";
const SKU = "REAG-CRP-100";

/** The lots service of a running gateway, when it runs the lots module. */
const lotsOf = (gw: GatewayRuntime) => (gw.extensions.get("lots") as LotsExtension | undefined)?.service;

interface Run {
  gw: GatewayRuntime;
  fleet: Fleet;
  clients: MqttClient[];
  dir: string;
  pg?: PgSchema;
  external: boolean;
  siteId: string;
  secrets: Map<string, string>;
  token: string;
  account(role: "erp" | "planner", clientId: string): Promise<MqttClient>;
}

type Mode = "embedded-sqlite" | "embedded-postgres" | "mosquitto";

async function scenario(mode: Mode, opts: { excursion?: boolean } = {}): Promise<Run> {
  const external = mode === "mosquitto";
  const dir = await mkdtemp(path.join(tmpdir(), "ct-lots-e2e-"));
  const prefix = `lots${randomBytes(3).toString("hex")}`;
  const siteId = `${prefix}-1`;
  const agentId = `${siteId}-pi`;
  const startAt = Math.floor(Date.now() / MIN) * MIN - 3 * 60 * MIN;
  const credentials = new CredentialStore();
  const secrets = new Map<string, string>();
  if (!external) {
    secrets.set(
      agentId,
      (await credentials.add({ username: agentId, role: "agent", siteIds: [siteId], agentId })).secret,
    );
    for (const role of ["erp", "planner"] as const) {
      secrets.set(role, (await credentials.add({ username: role, role, siteIds: [siteId] })).secret);
    }
  }
  const pg = mode === "embedded-postgres" ? await freshPgSchema("ct_lots_e2e") : undefined;
  const { token, hash } = generateToken();
  const config = parseGatewayConfig(
    {
      gatewayId: `gw-${prefix}`,
      broker: external
        ? { mode: "external", url: mqttUrl(), persistentSession: false, subscribeSites: [siteId] }
        : { host: "127.0.0.1", port: 0 },
      api: { host: "127.0.0.1", port: 0, tokens: [{ name: "demo", hash }] },
      ingest: { batchMaxDelayMs: 2 },
      storage: pg
        ? { records: { backend: "postgres", url: pg.connectionString }, readings: { backend: "postgres" } }
        : { records: { backend: "sqlite", path: "ct.db" }, readings: { backend: "sqlite" } },
    },
    "lots-e2e",
    dir,
  );
  const gw = await startGateway({
    config,
    log: pino({ level: "warn" }),
    credentials,
    extensions: builtinExtensions(config),
  });
  const clients: MqttClient[] = [];
  const account = async (role: "erp" | "planner", clientId: string) => {
    const opts: IClientOptions = {
      clientId: `${prefix}-${clientId}`,
      reconnectPeriod: 0,
      ...(external ? {} : { username: role, password: secrets.get(role) }),
    };
    const c = await connectAsync(gw.brokerUrl, opts);
    clients.push(c);
    return c;
  };
  const fleet = new Fleet({
    url: gw.brokerUrl,
    sites: 1,
    units: 2,
    probes: 2,
    sitePrefix: prefix,
    intervalMs: MIN,
    startAt,
    // Unit 1: 14 °C from minute 20 for 15 minutes: above the fridge range (8 °C) and its
    // action limit (12 °C) for longer than the action delay (5 min).
    ...(opts.excursion === false
      ? {}
      : { excursion: { site: 0, unit: 0, afterMs: 20 * MIN, durationMs: 15 * MIN, tempC: 14 } }),
    ...(external
      ? {}
      : { credentials: (a) => ({ username: a.agentId, password: secrets.get(a.agentId) as string }) }),
  });
  await fleet.start();
  return {
    gw,
    fleet,
    clients,
    dir,
    ...(pg ? { pg } : {}),
    external,
    siteId,
    secrets,
    token,
    account,
  };
}

async function api(run: Run, method: string, url: string, body?: unknown) {
  const res = await fetch(`${run.gw.apiUrl}/api/v1${url}`, {
    method,
    headers: {
      authorization: `Bearer ${run.token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as unknown };
}

/** Master data over REST, then the ERP receives 4 units of the lot into unit 1 over MQTT. */
async function receive(run: Run) {
  const { gw, fleet, siteId } = run;
  const start = fleet.options.startAt;
  const unitId = `${siteId}-u1`;
  await until(() => (gw.metrics.messagesByKind.get("birth") ?? 0) >= 1, "birth");

  // The planner listens from the start, as in production.
  const planner = await run.account("planner", "planner");
  const lotEvents: LotEvent[] = [];
  const eligibility: Eligibility[] = [];
  planner.on("message", (topic, payload) => {
    if (payload.length === 0) return; // a retained state being cleared
    const m = decodeMessage(topic, payload);
    if (m.kind === "lot") lotEvents.push(m.payload);
    if (m.kind === "eligibility") eligibility.push(m.payload);
  });
  await planner.subscribeAsync([topicFilters.eligibility(siteId), `ct/v1/${siteId}/events/lot/+`], {
    qos: 1,
  });

  // Master data over REST. No labelled upper limit: the lot's time above range is measured
  // against the fridge profile's range (8 °C), the limit the engine itself uses.
  expect(
    await api(run, "PUT", "/lots/products", {
      sku: SKU,
      name: "CRP reagent 100 tests",
      storageClass: "2-8C",
      highC: null,
      budgetMinutes: { high: 10, low: null },
    }),
  ).toMatchObject({ status: 200, body: { sku: SKU, lowC: 2, highC: null } });
  expect(
    await api(run, "PUT", "/lots/lots", {
      lotId: LOT,
      sku: SKU,
      expiresAt: Date.now() + 180 * 24 * 60 * MIN,
    }),
  ).toMatchObject({ status: 200, body: { lotId: LOT } });

  // The ERP bridge receives 4 units into the fridge over MQTT (contract `movement`).
  const erp = await run.account("erp", "erp");
  const receive: Movement = {
    v: 1,
    movementId: `${siteId}-DN-1-1`,
    kind: "receive",
    siteId,
    occurredAt: start + 5 * MIN,
    lotId: LOT,
    sku: SKU,
    quantity: 4,
    toUnitId: unitId,
    reference: "DN-1",
  };
  await erp.publishAsync(formatTopic({ kind: "movement", siteId }), encodePayload("movement", receive), {
    qos: 1,
  });
  await until(async () => {
    const r = await api(run, "GET", `/lots/occupancy?unitId=${unitId}&at=${start + 10 * MIN}`);
    return JSON.stringify(r.body) === JSON.stringify([{ lotId: LOT, siteId, quantity: 4 }]);
  }, "lot in the fridge");
  await until(() => eligibility.some((e) => e.lotId === LOT && e.eligible), "first eligibility");
  expect(eligibility.at(-1)).toMatchObject({ status: "available", transferableQuantity: 4 });
  return { unitId, lotEvents, eligibility };
}

async function receiveAndExcursion(run: Run) {
  const { gw, fleet, siteId } = run;
  const start = fleet.options.startAt;
  const { unitId, lotEvents, eligibility } = await receive(run);

  // An hour of the fleet, in 10-minute steps as an agent sends them live.
  for (let m = 10; m <= 60; m += 10) await fleet.advanceTo(start + m * MIN);
  await until(() => lotEvents.some((e) => e.type === "lot.quarantined"), "lot.quarantined");
  const quarantined = lotEvents.find((e) => e.type === "lot.quarantined") as LotEvent;
  expect(quarantined).toMatchObject({
    siteId,
    lotId: LOT,
    sku: SKU,
    unitId,
    quantity: 4,
  });
  expect(quarantined.reason).toContain("action-level excursion");
  expect(quarantined.excursionIds.length).toBe(1);
  const excursion = await gw.storage.records.getExcursion(quarantined.excursionIds[0] as string);
  expect(excursion).toMatchObject({ unitId, tier: "action", startedAt: start + 20 * MIN });

  // Settle: every reading processed, every outbox row acknowledged and received by the planner.
  const sent = fleet.readingsSent;
  await until(() => gw.metrics.readingsStored >= sent, "all readings stored");
  await gw.ingest.idle();
  await until(async () => (await lotsOf(gw)?.outbox.pending()) === 0, "outbox drained");
  const rows = (await lotsOf(gw)?.outbox.rows()) ?? [];
  const eligibilityRows = rows.filter((row) => row.kind === "eligibility").length;
  await until(() => eligibility.length >= eligibilityRows, "every eligibility received");
  // The exposure is complete once the excursion closed: 15 min above 8 °C, budget 10 min.
  const last = eligibility.at(-1) as Eligibility;
  expect(last.remainingBudgetMinutes.high).toBe(0);
  expect(last).toMatchObject({
    siteId,
    lotId: LOT,
    status: "quarantined",
    eligible: false,
    transferableQuantity: 0,
    lotSeq: quarantined.lotSeq,
  });
  const exposures = await lotsOf(gw)?.exposures(LOT);
  expect(exposures?.at(-1)).toMatchObject({ cause: "excursion", minutesAbove: 15, peakC: 14 });

  // A planner connecting now gets the state retained by the broker.
  const late = await run.account("planner", "planner-late");
  const retained = new Promise<{ retain: boolean; payload: Eligibility }>((resolve) =>
    late.on("message", (topic, payload, packet) => {
      if (payload.length === 0) return;
      const m = decodeMessage(topic, payload);
      if (m.kind === "eligibility") resolve({ retain: packet.retain, payload: m.payload });
    }),
  );
  await late.subscribeAsync(formatTopic({ kind: "eligibility", siteId, lotId: LOT }), { qos: 1 });
  const r = await retained;
  expect(r.retain).toBe(true);
  expect(r.payload).toEqual(last);

  // REST answers the same (its updatedAt is the time of the query).
  const rest = await api(run, "GET", `/lots/eligibility?siteId=${siteId}&lotId=${encodeURIComponent(LOT)}`);
  expect(rest.status).toBe(200);
  const { updatedAt: _u, ...same } = last;
  expect(rest.body).toEqual([{ ...same, updatedAt: expect.any(Number) }]);

  // Every lot event went out once (outbox rows all acknowledged).
  expect(await lotsOf(gw)?.outbox.pending()).toBe(0);
  expect(new Set(lotEvents.map((e) => e.eventId)).size).toBe(lotEvents.length);
}

let current: Run | undefined;
afterEach(async () => {
  if (!current) return;
  const r = current;
  current = undefined;
  for (const c of r.clients) await c.endAsync(true);
  await r.fleet.stop();
  await r.gw.stop();
  if (r.external) {
    // Clear what this run left retained on the shared broker.
    const c = await connectAsync(mqttUrl(), { reconnectPeriod: 0 });
    const topics = [
      formatTopic({ kind: "eligibility", siteId: r.siteId, lotId: LOT }),
      formatTopic({ kind: "gatewayState", gatewayId: r.gw.config.gatewayId }),
      ...r.fleet.agents.flatMap((a) => [
        `ct/v1/${a.siteId}/agent/${a.agentId}/birth`,
        `ct/v1/${a.siteId}/agent/${a.agentId}/state`,
      ]),
    ];
    for (const t of topics) await c.publishAsync(t, "", { qos: 1, retain: true });
    await c.endAsync();
  }
  await r.pg?.drop();
  await rm(r.dir, { recursive: true, force: true });
});

describe("lots end to end", () => {
  it("embedded broker, SQLite: ERP movement → excursion → lot.quarantined + retained ineligible", async () => {
    current = await scenario("embedded-sqlite");
    await receiveAndExcursion(current);
  });

  it("an agent's evicted range is a recording gap: the lot inside is quarantined once", async () => {
    current = await scenario("embedded-sqlite", { excursion: false });
    const run = current;
    const { gw, fleet, siteId } = run;
    const start = fleet.options.startAt;
    const { unitId, lotEvents, eligibility } = await receive(run);
    await fleet.advanceTo(start + 30 * MIN);
    // The agent's outbox overflowed: readings of minutes 12–18 of unit 1 are lost (contract `gap`).
    // Seqs the fleet never sent: the gateway drops an eviction whose every seq it has stored.
    const agentId = `${siteId}-pi`;
    const agent = await connectAsync(gw.brokerUrl, {
      clientId: `${agentId}-gap`,
      username: agentId,
      password: run.secrets.get(agentId) as string,
      reconnectPeriod: 0,
    });
    run.clients.push(agent);
    await agent.publishAsync(
      formatTopic({ kind: "gap", siteId, agentId }),
      encodePayload("gap", {
        v: 1,
        agentId,
        gapId: "evict-1",
        reason: "outbox_evicted",
        unitIds: [unitId],
        probeIds: [`${unitId}-p1`],
        fromObservedAt: start + 12 * MIN,
        toObservedAt: start + 18 * MIN,
        fromSeq: 900_040,
        toSeq: 900_045,
        droppedCount: 6,
        at: start + 30 * MIN,
      }),
      { qos: 1 },
    );
    await until(() => lotEvents.some((e) => e.type === "lot.quarantined"), "lot.quarantined");
    expect(lotEvents.find((e) => e.type === "lot.quarantined")).toMatchObject({ unitId, quantity: 4 });
    expect(lotEvents.find((e) => e.type === "lot.quarantined")?.reason).toContain("recording gap");
    await until(() => eligibility.at(-1)?.eligible === false, "ineligible");
    expect(eligibility.at(-1)).toMatchObject({ status: "quarantined", transferableQuantity: 0 });
    // One cause, one hold: the agent's record and the engine's recording gap are not both counted.
    const holds = await lotsOf(gw)?.holds({ lotId: LOT });
    expect(holds?.map((h) => [h.status, h.unitId])).toEqual([["quarantined", unitId]]);
  });

  it("lots disabled: no lots routes, movements ignored", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ct-lots-off-"));
    const { token, hash } = generateToken();
    const config = parseGatewayConfig(
      {
        broker: { host: "127.0.0.1", port: 0 },
        api: { host: "127.0.0.1", port: 0, tokens: [{ name: "t", hash }] },
        storage: { records: { backend: "sqlite", path: "ct.db" }, readings: { backend: "sqlite" } },
        lots: { enabled: false },
      },
      "lots-off",
      dir,
    );
    const gw = await startGateway({
      config,
      log: pino({ level: "warn" }),
      credentials: new CredentialStore(),
      extensions: builtinExtensions(config),
    });
    try {
      expect(lotsOf(gw)).toBeUndefined();
      const res = await fetch(`${gw.apiUrl}/api/v1/lots/eligibility?siteId=s1`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(404);
    } finally {
      await gw.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const postgres = await requireService("postgres");
describe.skipIf(!postgres.available)(`lots end to end on PostgreSQL ${postgres.reason}`, () => {
  it("embedded broker, PostgreSQL records: the same flow", async () => {
    current = await scenario("embedded-postgres");
    await receiveAndExcursion(current);
  });
});

const mosquitto = await requireService("mosquitto");
describe.skipIf(!mosquitto.available)(`lots end to end on Mosquitto ${mosquitto.reason}`, () => {
  it("Mosquitto (external broker): the same flow", async () => {
    current = await scenario("mosquitto");
    await receiveAndExcursion(current);
  });
});
