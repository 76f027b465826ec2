/**
 * Retained eligibility is reconciled with the database at start (#14), and bad movements over
 * MQTT are rejected and counted without harm:
 * - embedded broker: a gateway restarted on the same SQLite file (its embedded broker starts
 *   empty) gives a fresh subscriber the retained eligibility of every lot;
 * - Mosquitto: a retained eligibility for a lot this database has no state for (left by an
 *   earlier database) is cleared when the gateway starts;
 * - embedded broker: a movement with a known movementId and other content, one dispensing 600 of
 *   6 and one naming an unknown unit are rejected, counted in /metrics, and change nothing.
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
  type Movement,
} from "@coldtrace/protocol";
import { mqttUrl, requireService } from "@coldtrace/testkit";
import { connectAsync, type MqttClient } from "mqtt";
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
const SKU = "REAG-CRP-100";
const lotsOf = (gw: GatewayRuntime) => (gw.extensions.get("lots") as LotsExtension).service!;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(dir: string, broker: Record<string, unknown>, credentials?: CredentialStore) {
  const { token, hash } = generateToken();
  const config = parseGatewayConfig(
    {
      broker,
      api: { host: "127.0.0.1", port: 0, tokens: [{ name: "t", hash }] },
      storage: { records: { backend: "sqlite", path: "ct.db" }, readings: { backend: "sqlite" } },
    },
    "lots-retained",
    dir,
  );
  const gw = await startGateway({
    config,
    log: pino({ level: "warn" }),
    credentials: credentials ?? new CredentialStore(),
    extensions: builtinExtensions(config),
  });
  return { gw, token };
}

/** An agent's birth announcing `unitId` at the site (the agent's account must exist). */
async function announce(gw: GatewayRuntime, siteId: string, unitId: string, secret?: string) {
  const agentId = `${siteId}-pi`;
  const c = await connectAsync(gw.brokerUrl, {
    clientId: agentId,
    reconnectPeriod: 0,
    ...(secret ? { username: agentId, password: secret } : {}),
  });
  await c.publishAsync(
    formatTopic({ kind: "birth", siteId, agentId }),
    encodePayload("birth", {
      v: 1,
      agentId,
      siteId,
      sessionId: "s1",
      agentVersion: "1",
      configHash: "d".repeat(64),
      startedAt: Date.now(),
      nextSeq: 1,
      units: [{ unitId, kind: "fridge", probeIds: [`${unitId}-p1`] }],
      probes: [{ probeId: `${unitId}-p1`, unitId, driver: "modbus-tcp", intervalMs: 60_000 }],
    }),
    { qos: 1 },
  );
  await c.endAsync();
  await until(() => gw.units.get(unitId) !== undefined, `${unitId} announced`);
}

/** Every retained eligibility a fresh subscriber of the site gets, once `expected` have come. */
async function retainedStates(url: string, siteId: string, expected: number, auth = {}) {
  const c = await connectAsync(url, { reconnectPeriod: 0, ...auth });
  const got = new Map<string, Eligibility>();
  c.on("message", (topic, payload, packet) => {
    if (!packet.retain || payload.length === 0) return;
    const m = decodeMessage(topic, payload);
    if (m.kind === "eligibility") got.set(m.payload.lotId, m.payload);
  });
  await c.subscribeAsync(`ct/v1/${siteId}/eligibility/+`, { qos: 1 });
  await until(() => got.size >= expected, `${expected} retained states`);
  await c.endAsync();
  return got;
}

describe("retained eligibility reconciled with the database", () => {
  it("embedded broker: after a restart a fresh subscriber gets the retained state of every lot", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ct-lots-retained-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const siteId = `ret${randomBytes(2).toString("hex")}`;
    const credentials = new CredentialStore();
    const planner = await credentials.add({ username: "planner", role: "planner", siteIds: [siteId] });
    const auth = { username: "planner", password: planner.secret };
    const agent = await credentials.add({
      username: `${siteId}-pi`,
      role: "agent",
      siteIds: [siteId],
      agentId: `${siteId}-pi`,
    });
    const first = await gateway(dir, { host: "127.0.0.1", port: 0 }, credentials);
    const lots = lotsOf(first.gw);
    await lots.upsertProduct({ sku: SKU, name: "CRP", storageClass: "2-8C" });
    await announce(first.gw, siteId, `${siteId}-f1`, agent.secret);
    const lotIds = Array.from({ length: 5 }, (_, i) => `L-${i}/26`);
    for (const [i, lotId] of lotIds.entries()) {
      await lots.recordMovement({
        v: 1,
        movementId: `${siteId}-m${i}`,
        kind: "receive",
        siteId,
        occurredAt: Date.now() - 60 * MIN,
        lotId,
        sku: SKU,
        quantity: i + 1,
        toUnitId: `${siteId}-f1`,
      });
    }
    expect((await retainedStates(first.gw.brokerUrl, siteId, 5, auth)).size).toBe(5);
    await first.gw.stop();

    // The embedded broker of the restarted gateway starts with no retained message at all.
    const second = await gateway(dir, { host: "127.0.0.1", port: 0 }, credentials);
    cleanups.push(() => second.gw.stop());
    const states = await retainedStates(second.gw.brokerUrl, siteId, 5, auth);
    expect([...states.keys()].sort()).toEqual(lotIds);
    for (const [i, lotId] of lotIds.entries())
      expect(states.get(lotId)).toMatchObject({ status: "available", transferableQuantity: i + 1 });
  });

  it("embedded broker: conflicting, contradicting and unknown-unit movements over MQTT are rejected and counted", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ct-lots-mqtt-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const siteId = `mq${randomBytes(2).toString("hex")}`;
    const credentials = new CredentialStore();
    const erpSecret = (await credentials.add({ username: "erp", role: "erp", siteIds: [siteId] })).secret;
    const agent = await credentials.add({
      username: `${siteId}-pi`,
      role: "agent",
      siteIds: [siteId],
      agentId: `${siteId}-pi`,
    });
    const { gw, token } = await gateway(dir, { host: "127.0.0.1", port: 0 }, credentials);
    cleanups.push(() => gw.stop());
    await lotsOf(gw).upsertProduct({ sku: SKU, name: "CRP", storageClass: "2-8C" });
    await announce(gw, siteId, "f1", agent.secret);
    const erp: MqttClient = await connectAsync(gw.brokerUrl, {
      clientId: `${siteId}-erp`,
      username: "erp",
      password: erpSecret,
      reconnectPeriod: 0,
    });
    cleanups.push(() => erp.endAsync());
    const base: Movement = {
      v: 1,
      movementId: `${siteId}-1`,
      kind: "receive",
      siteId,
      occurredAt: Date.now() - 60 * MIN,
      lotId: "L1",
      sku: SKU,
      quantity: 6,
      toUnitId: "f1",
    };
    const send = (m: Movement) =>
      erp.publishAsync(formatTopic({ kind: "movement", siteId }), encodePayload("movement", m), { qos: 1 });
    await send(base);
    await send({ ...base, quantity: 7 }); // same movementId, other content
    await send({
      ...base,
      movementId: `${siteId}-2`,
      kind: "dispense",
      quantity: 600,
      toUnitId: undefined,
      fromUnitId: "f1",
      occurredAt: base.occurredAt + MIN,
    } as Movement);
    await send({ ...base, movementId: `${siteId}-3`, toUnitId: "f9" });
    const metric = async (name: string) => {
      const text = await (await fetch(`${gw.apiUrl}/metrics`)).text();
      return Number(new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    };
    await until(
      async () => (await metric('coldtrace_lots_movements_rejected_total{reason="invalid"}')) === 2,
      "two invalid movements counted",
    );
    expect(await metric('coldtrace_lots_movements_rejected_total{reason="conflict"}')).toBe(1);
    const res = await fetch(`${gw.apiUrl}/api/v1/lots/occupancy?unitId=f1`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(await res.json()).toEqual([{ lotId: "L1", siteId, quantity: 6 }]);
  });
});

const mosquitto = await requireService("mosquitto");
describe.skipIf(!mosquitto.available)(`retained eligibility on Mosquitto ${mosquitto.reason}`, () => {
  it("clears a retained state for a lot the database has no state for", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ct-lots-stale-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const siteId = `stale${randomBytes(3).toString("hex")}`;
    // Left on the broker by an earlier database of this site: a lot this one never saw.
    const old = await connectAsync(mqttUrl(), { reconnectPeriod: 0 });
    const staleTopic = formatTopic({ kind: "eligibility", siteId, lotId: "GONE/1" });
    const stale: Eligibility = {
      v: 1,
      siteId,
      lotId: "GONE/1",
      sku: SKU,
      status: "available",
      eligible: true,
      expiresAt: null,
      transferableQuantity: 3,
      remainingBudgetMinutes: { high: null, low: null },
      reasons: [],
      updatedAt: Date.now(),
      lotSeq: 0,
    };
    await old.publishAsync(staleTopic, encodePayload("eligibility", stale), { qos: 1, retain: true });
    await old.endAsync();
    cleanups.push(async () => {
      const c = await connectAsync(mqttUrl(), { reconnectPeriod: 0 });
      await c.publishAsync(staleTopic, "", { qos: 1, retain: true });
      await c.endAsync();
    });

    const { gw } = await gateway(dir, {
      mode: "external",
      url: mqttUrl(),
      persistentSession: false,
      subscribeSites: [siteId],
    });
    cleanups.push(() => gw.stop());
    // The gateway's subscription got the retained state, found no lot for it, cleared it.
    await until(
      async () => (await lotsOf(gw).outbox.rows()).some((r) => r.topic === staleTopic && r.sentAt !== null),
      "clear sent",
    );
    const c = await connectAsync(mqttUrl(), { reconnectPeriod: 0 });
    let seen = 0;
    c.on("message", (topic, payload, packet) => {
      if (topic === staleTopic && packet.retain && payload.length > 0) seen++;
    });
    // A marker retained on a topic of this test only: once it arrives, the stale one would have too.
    const marker = `coldtrace-test/${siteId}/marker`;
    await c.publishAsync(marker, "x", { qos: 1, retain: true });
    let markerSeen = false;
    c.on("message", (topic) => {
      if (topic === marker) markerSeen = true;
    });
    await c.subscribeAsync([staleTopic, marker], { qos: 1 });
    await until(() => markerSeen, "marker");
    expect(seen).toBe(0);
    await c.publishAsync(marker, "", { qos: 1, retain: true });
    await c.endAsync();
  });
});
