/**
 * The embedded broker bounds what it holds for an offline persistent session
 * (broker.maxQueuedMessages / maxQueuedBytes, offline-queue.ts): a planner with
 * cleanSession: false that goes away gets back the OLDEST messages up to the bound, the
 * newer ones are dropped and counted, and online subscribers still receive everything.
 * Real MQTT clients over TCP against the real aedes persistence.
 */
import { formatTopic } from "@coldtrace/protocol";
import { connectAsync, type IClientOptions, type MqttClient } from "mqtt";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { CredentialStore } from "../../src/broker/credentials.ts";
import { type EmbeddedBroker, startEmbeddedBroker } from "../../src/broker/embedded.ts";

interface LogLine {
  level: number;
  msg: string;
  clientId?: string;
  droppedMessages?: number;
  queuedMessages?: number;
}

const site = "site-1";
const lotTopic = (i: number) => formatTopic({ kind: "lot", siteId: site, lotId: `lot-${i}` });
const lotFilter = `ct/v1/${site}/events/lot/+`;

describe("embedded broker: bounded queues for offline persistent sessions", () => {
  let broker: EmbeddedBroker | undefined;
  const clients: MqttClient[] = [];
  const logs: LogLine[] = [];
  const secrets = new Map<string, string>();

  async function start(limits: { maxQueuedMessages: number; maxQueuedBytes: number }) {
    const credentials = new CredentialStore();
    for (const [username, role] of [
      ["planner", "planner"],
      ["monitor", "monitor"],
    ] as const) {
      const { secret } = await credentials.add({ username, role, siteIds: [site] });
      secrets.set(username, secret);
    }
    broker = await startEmbeddedBroker({
      host: "127.0.0.1",
      port: 0,
      drainTimeoutMs: 2000,
      queueLimit: 42,
      concurrency: 100,
      ...limits,
      credentials,
      log: pino({ level: "info" }, { write: (line: string) => logs.push(JSON.parse(line) as LogLine) }),
    });
    return broker;
  }

  async function connect(b: EmbeddedBroker, username: string | undefined, opts: IClientOptions) {
    const account = username === undefined ? b.gatewayAccount : { username, password: secrets.get(username) };
    const c = await connectAsync(b.url, { ...account, reconnectPeriod: 0, ...opts });
    clients.push(c);
    return c;
  }

  /** Disconnects cleanly and waits until the broker has let go of the connection. */
  async function goOffline(b: EmbeddedBroker, c: MqttClient, clientId: string) {
    const gone = new Promise<void>((resolve) => {
      const onDisconnect = (client: { id: string }) => {
        if (client.id !== clientId) return;
        b.aedes.off("clientDisconnect", onDisconnect);
        resolve();
      };
      b.aedes.on("clientDisconnect", onDisconnect);
    });
    await c.endAsync();
    await gone;
    await new Promise((r) => setImmediate(r)); // the socket's 'close' follows in the next tick
  }

  /**
   * Collects payloads until `marker` has arrived and at least `atLeast` others. aedes drains a
   * restored session's queue while live messages already flow, so a live marker can overtake
   * queued messages; what was queued is asserted through the persistence before reconnecting.
   */
  function collectUntil(c: MqttClient, marker: string, atLeast = 0): Promise<string[]> {
    const got: string[] = [];
    let marked = false;
    return new Promise((resolve) =>
      c.on("message", (_topic, payload) => {
        const text = payload.toString();
        if (text === marker) marked = true;
        else got.push(text);
        if (marked && got.length >= atLeast) resolve(got);
      }),
    );
  }

  /** Messages aedes' persistence really holds for a client (its outgoing queue). */
  async function persisted(b: EmbeddedBroker, clientId: string): Promise<number> {
    const persistence = (
      b.aedes as unknown as { persistence: { outgoingStream(c: { id: string }): AsyncIterable<unknown> } }
    ).persistence;
    let n = 0;
    for await (const _ of persistence.outgoingStream({ id: clientId })) n++;
    return n;
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.end(true);
    await broker?.close();
    broker = undefined;
    logs.length = 0;
  });

  it("keeps the oldest maxQueuedMessages for an offline planner, drops the rest, and delivers all online", async () => {
    const b = await start({ maxQueuedMessages: 5, maxQueuedBytes: 0 });
    const planner = await connect(b, "planner", { clientId: "planner-1", clean: false });
    await planner.subscribeAsync(lotFilter, { qos: 1 });
    await goOffline(b, planner, "planner-1");

    // An online persistent subscriber on the same topics: the bound must not touch it.
    const monitor = await connect(b, "monitor", { clientId: "monitor-1", clean: false });
    await monitor.subscribeAsync(lotFilter, { qos: 1 });
    const monitorGot = collectUntil(monitor, "end");

    const gateway = await connect(b, undefined, { clientId: "gw-pub" });
    const total = 12;
    for (let i = 0; i < total; i++) await gateway.publishAsync(lotTopic(i), `m${i}`, { qos: 1 });

    expect(await persisted(b, "planner-1")).toBe(5);
    expect(b.queues.queued("planner-1").messages).toBe(5);
    expect(b.queues.droppedTotal()).toBe(total - 5);
    expect(b.queues.overflowingClients()).toBe(1);
    const warns = logs.filter((l) => l.level === 40 && l.clientId === "planner-1");
    expect(warns).toEqual([
      expect.objectContaining({ msg: expect.stringMatching(/offline queue full/), queuedMessages: 5 }),
    ]);

    const back = await connect(b, "planner", { clientId: "planner-1", clean: false });
    expect(back.connected).toBe(true);
    const plannerGot = collectUntil(back, "end", 5);
    await gateway.publishAsync(lotTopic(99), "end", { qos: 1 });

    // Drop-newest (as Mosquitto): the oldest five, in order (the persistence held no others).
    expect(await plannerGot).toEqual(["m0", "m1", "m2", "m3", "m4"]);
    expect(await monitorGot).toEqual(Array.from({ length: total }, (_, i) => `m${i}`));
    expect(b.queues.overflowingClients()).toBe(0);
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 30, clientId: "planner-1", droppedMessages: total - 5 }),
    );
  });

  it("warns once per overflow episode and counts every drop", async () => {
    const b = await start({ maxQueuedMessages: 2, maxQueuedBytes: 0 });
    const gateway = await connect(b, undefined, { clientId: "gw-pub" });
    let planner = await connect(b, "planner", { clientId: "planner-2", clean: false });
    await planner.subscribeAsync(lotFilter, { qos: 1 });

    for (const episode of [1, 2]) {
      await goOffline(b, planner, "planner-2");
      for (let i = 0; i < 6; i++) await gateway.publishAsync(lotTopic(i), `e${episode}-${i}`, { qos: 1 });
      planner = await connect(b, "planner", { clientId: "planner-2", clean: false });
      const got = collectUntil(planner, "end", 2);
      await gateway.publishAsync(lotTopic(99), "end", { qos: 1 });
      expect(await got).toEqual([`e${episode}-0`, `e${episode}-1`]);
    }
    expect(b.queues.droppedTotal()).toBe(8);
    expect(logs.filter((l) => l.level === 40 && l.clientId === "planner-2")).toHaveLength(2);
  });

  it("bounds the payload bytes held for an offline client", async () => {
    const b = await start({ maxQueuedMessages: 100, maxQueuedBytes: 250 });
    const planner = await connect(b, "planner", { clientId: "planner-3", clean: false });
    await planner.subscribeAsync(lotFilter, { qos: 1 });
    await goOffline(b, planner, "planner-3");

    const gateway = await connect(b, undefined, { clientId: "gw-pub" });
    for (let i = 0; i < 5; i++)
      await gateway.publishAsync(lotTopic(i), Buffer.alloc(100, 48 + i), { qos: 1 });

    expect(await persisted(b, "planner-3")).toBe(2);
    expect(b.queues.queued("planner-3")).toEqual({ messages: 2, bytes: 200 });
    expect(b.queues.droppedTotal()).toBe(3);
  });

  it("never bounds the gateway's own persistent session, which holds readings", async () => {
    const b = await start({ maxQueuedMessages: 2, maxQueuedBytes: 0 });
    const ingest = await connect(b, undefined, { clientId: "coldtrace-gateway-gw-1", clean: false });
    await ingest.subscribeAsync(lotFilter, { qos: 1 });
    await goOffline(b, ingest, "coldtrace-gateway-gw-1");
    const gateway = await connect(b, undefined, { clientId: "gw-pub" });
    for (let i = 0; i < 6; i++) await gateway.publishAsync(lotTopic(i), `g${i}`, { qos: 1 });
    expect(await persisted(b, "coldtrace-gateway-gw-1")).toBe(6);
    expect(b.queues.droppedTotal()).toBe(0);
  });

  it("does not bound a clean-session subscriber, which the broker holds nothing for", async () => {
    const b = await start({ maxQueuedMessages: 2, maxQueuedBytes: 0 });
    const monitor = await connect(b, "monitor", { clientId: "monitor-clean", clean: true });
    await monitor.subscribeAsync(lotFilter, { qos: 1 });
    const got = collectUntil(monitor, "end");
    const gateway = await connect(b, undefined, { clientId: "gw-pub" });
    for (let i = 0; i < 6; i++) await gateway.publishAsync(lotTopic(i), `c${i}`, { qos: 1 });
    await gateway.publishAsync(lotTopic(99), "end", { qos: 1 });
    expect(await got).toHaveLength(6);
    expect(b.queues.droppedTotal()).toBe(0);
    expect(await persisted(b, "monitor-clean")).toBe(0);
  });
});
