/**
 * The embedded broker's authentication and topic ACLs, with real MQTT clients over TCP.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { connectAsync, type MqttClient } from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { filterWithin, maySubscribe } from "../../src/broker/acl.ts";
import { CredentialStore } from "../../src/broker/credentials.ts";
import { type EmbeddedBroker, startEmbeddedBroker } from "../../src/broker/embedded.ts";

const log = pino({ level: "silent" });

function options(credentials: CredentialStore, port = 0) {
  return {
    host: "127.0.0.1",
    port,
    drainTimeoutMs: 2000,
    queueLimit: 42,
    concurrency: 100,
    credentials,
    log,
  };
}

describe("acl filters", () => {
  it("contains filters level by level", () => {
    expect(filterWithin("ct/v1/s1/agent/a1/#", "ct/v1/s1/agent/a1/#")).toBe(true);
    expect(filterWithin("ct/v1/s1/agent/a1/birth", "ct/v1/s1/agent/a1/#")).toBe(true);
    expect(filterWithin("ct/v1/+/agent/a1/#", "ct/v1/s1/agent/a1/#")).toBe(false);
    expect(filterWithin("ct/v1/#", "ct/v1/s1/agent/a1/#")).toBe(false);
    expect(filterWithin("ct/v1/_gateway/gw-1/state", "ct/v1/_gateway/+/state")).toBe(true);
    expect(filterWithin("ct/v1/_gateway/+/state", "ct/v1/_gateway/+/state")).toBe(true);
    expect(filterWithin("ct/v1/_gateway/#", "ct/v1/_gateway/+/state")).toBe(false);
    expect(filterWithin("ct/v1/_gateway/gw/state/x", "ct/v1/_gateway/+/state")).toBe(false);
  });

  it("confines a planner to eligibility and lot events", () => {
    const planner = { username: "planner", role: "planner" as const, siteIds: ["*"] };
    expect(maySubscribe(planner, "ct/v1/+/eligibility/+")).toBe(true);
    expect(maySubscribe(planner, "ct/v1/s1/events/lot/+")).toBe(true);
    expect(maySubscribe(planner, "ct/v1/s1/events/#")).toBe(false);
    expect(maySubscribe(planner, "ct/v1/+/agent/+/telemetry/+")).toBe(false);
  });
});

describe("embedded broker access control", () => {
  let dir: string;
  let broker: EmbeddedBroker;
  const secrets: Record<string, string> = {};
  const clients: MqttClient[] = [];

  async function connect(username: string, password = secrets[username], clientId?: string) {
    const c = await connectAsync(broker.url, {
      username,
      password,
      clientId: clientId ?? `${username}-${clients.length}`,
      reconnectPeriod: 0,
    });
    clients.push(c);
    return c;
  }

  async function gateway() {
    const c = await connectAsync(broker.url, {
      ...broker.gatewayAccount,
      clientId: `gw-${clients.length}`,
      reconnectPeriod: 0,
    });
    clients.push(c);
    return c;
  }

  /** The QoS the broker granted for one filter; 128 is a refusal (MQTT 3.1.1 §3.9.3). */
  async function granted(c: MqttClient, filter: string): Promise<number> {
    try {
      const [g] = await c.subscribeAsync(filter, { qos: 1 });
      return g?.qos ?? -1;
    } catch (err) {
      if ((err as Error).message.includes("Subscribe error")) return 128;
      throw err;
    }
  }

  function nextMessage(
    c: MqttClient,
    topic: string,
  ): Promise<{ topic: string; payload: string; retain: boolean }[]> {
    const seen: { topic: string; payload: string; retain: boolean }[] = [];
    return new Promise((resolve) => {
      c.on("message", (t, p, packet) => {
        seen.push({ topic: t, payload: p.toString(), retain: packet.retain });
        if (t === topic) resolve(seen);
      });
    });
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-broker-"));
    const store = new CredentialStore();
    for (const [username, siteIds, role] of [
      ["pi-1", ["s1"], "agent"],
      ["pi-2", ["s1"], "agent"],
      ["pi-9", ["s2"], "agent"],
      ["planner", ["*"], "planner"],
      ["erp-s1", ["s1"], "erp"],
    ] as const) {
      const { secret } = await store.add({
        username,
        role,
        siteIds,
        ...(role === "agent" ? { agentId: username } : {}),
      });
      secrets[username] = secret;
    }
    await store.save(path.join(dir, "credentials.json"));
    broker = await startEmbeddedBroker(
      options(await CredentialStore.load(path.join(dir, "credentials.json"))),
    );
  });

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await broker?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("stores secrets hashed, never in plain text", async () => {
    const text = await readFile(path.join(dir, "credentials.json"), "utf8");
    expect(text).toContain("scrypt$");
    for (const secret of Object.values(secrets)) expect(text).not.toContain(secret);
  });

  it("refuses a bad password and an unknown user with CONNACK 4", async () => {
    await expect(connect("pi-1", "wrong")).rejects.toMatchObject({ code: 4 });
    await expect(connect("nobody", "x")).rejects.toMatchObject({ code: 4 });
    await expect(connectAsync(broker.url, { clientId: "anon", reconnectPeriod: 0 })).rejects.toMatchObject({
      code: 4,
    });
  });

  it("lets an agent publish under its own topics only; a foreign topic closes it", async () => {
    const gw = await gateway();
    await gw.subscribeAsync("ct/v1/#", { qos: 1 });
    const agent = await connect("pi-1");
    const received = nextMessage(gw, "ct/v1/s1/agent/pi-1/health");

    const closed = new Promise<void>((r) => agent.once("close", () => r()));
    // Another agent's topic: refused and disconnected.
    agent.publish("ct/v1/s1/agent/pi-2/birth", "{}", { qos: 0 });
    await closed;
    const again = await connect("pi-1");
    const closed2 = new Promise<void>((r) => again.once("close", () => r()));
    again.publish("ct/v1/s1/events/alarm/fridge-1", "{}", { qos: 0 }); // gateway events
    await closed2;
    const third = await connect("pi-1");
    const closed3 = new Promise<void>((r) => third.once("close", () => r()));
    third.publish("ct/v1/s2/agent/pi-1/health", "{}", { qos: 0 }); // another site
    await closed3;

    const fourth = await connect("pi-1");
    await fourth.publishAsync("ct/v1/s1/agent/pi-1/health", "ok", { qos: 1 });
    const seen = await received;
    expect(seen.map((m) => m.topic)).toEqual(["ct/v1/s1/agent/pi-1/health"]);
  });

  it("never lets an agent read other sites or other agents", async () => {
    const agent = await connect("pi-1");
    const filters = [
      "ct/v1/_gateway/+/state",
      "ct/v1/s1/agent/pi-1/#",
      "ct/v1/s2/agent/+/telemetry/+",
      "ct/v1/s1/agent/pi-2/#",
      "ct/v1/#",
      "#",
    ];
    const result: [string, number][] = [];
    for (const f of filters) result.push([f, await granted(agent, f)]);
    expect(result).toEqual([
      ["ct/v1/_gateway/+/state", 1],
      ["ct/v1/s1/agent/pi-1/#", 1],
      ["ct/v1/s2/agent/+/telemetry/+", 128],
      ["ct/v1/s1/agent/pi-2/#", 128],
      ["ct/v1/#", 128],
      ["#", 128],
    ]);
  });

  it("lets the ERP bridge publish movements for its sites only, and the planner read lots", async () => {
    const gw = await gateway();
    await gw.subscribeAsync("ct/v1/+/movements", { qos: 1 });
    const got = nextMessage(gw, "ct/v1/s1/movements");
    const erp = await connect("erp-s1");
    await erp.publishAsync("ct/v1/s1/movements", "m", { qos: 1 });
    expect((await got).map((m) => m.topic)).toEqual(["ct/v1/s1/movements"]);
    const closed = new Promise<void>((r) => erp.once("close", () => r()));
    erp.publish("ct/v1/s2/movements", "m", { qos: 0 });
    await closed;

    const planner = await connect("planner");
    expect(await granted(planner, "ct/v1/+/eligibility/+")).toBe(1);
    expect(await granted(planner, "ct/v1/+/events/lot/+")).toBe(1);
    expect(await granted(planner, "ct/v1/+/agent/#")).toBe(128);
  });

  it("strips retain from telemetry but keeps it on state topics", async () => {
    const agent = await connect("pi-2");
    await agent.publishAsync("ct/v1/s1/agent/pi-2/telemetry/fridge-1", "reading", { qos: 1, retain: true });
    await agent.publishAsync("ct/v1/s1/agent/pi-2/birth", "birth", { qos: 1, retain: true });
    const gw = await gateway();
    const got = nextMessage(gw, "ct/v1/s1/agent/pi-2/state");
    await gw.subscribeAsync("ct/v1/s1/agent/pi-2/#", { qos: 1 });
    await agent.publishAsync("ct/v1/s1/agent/pi-2/state", "live", { qos: 1 });
    const seen = await got;
    expect(seen.map((m) => [m.topic, m.retain])).toEqual([
      ["ct/v1/s1/agent/pi-2/birth", true],
      ["ct/v1/s1/agent/pi-2/state", false],
    ]);
  });

  it("names the setting when the port is taken", async () => {
    await expect(startEmbeddedBroker(options(new CredentialStore(), broker.port))).rejects.toMatchObject({
      code: "CT_BROKER_PORT",
      message: expect.stringContaining("broker.port"),
    });
  });
});
