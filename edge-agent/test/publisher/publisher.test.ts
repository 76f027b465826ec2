/**
 * The publisher against real brokers: the embedded aedes broker and the machine's Mosquitto.
 * Link failures are real too: the agent connects through a TCP proxy the test can cut.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";

import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type NewReading, Outbox } from "../../src/outbox/index.ts";
import { type BirthTemplate, type MqttSettings, Publisher } from "../../src/publisher/index.ts";
import { onEachBroker } from "../helpers/brokers.ts";
import { type Received, subscribe, type TestSubscriber } from "../helpers/subscriber.ts";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.ts";
import { tempDir } from "../helpers/tmp.ts";

const T0 = 1_764_057_600_000;
const log = pino({ level: "silent" });

function settings(url: string): MqttSettings {
  return {
    url,
    clientId: `ct-test-${randomBytes(4).toString("hex")}`,
    keepaliveSec: 5,
    connectTimeoutMs: 2000,
    reconnect: { minMs: 20, maxMs: 200 },
    batchMaxReadings: 100,
    batchDelayMs: 10,
    inflightWindow: 16,
  };
}

function birthTemplate(agentId: string, siteId: string): BirthTemplate {
  return {
    agentId,
    siteId,
    agentVersion: "0.1.0",
    configHash: "0".repeat(64),
    startedAt: T0,
    units: [
      { unitId: "fridge-2", kind: "fridge", probeIds: ["fridge-2-top"] },
      { unitId: "box-7", kind: "transit_box", probeIds: ["box-7-core"] },
    ],
    probes: [
      {
        probeId: "fridge-2-top",
        unitId: "fridge-2",
        driver: "modbus-tcp",
        intervalMs: 10_000,
        calibrationOffsetC: 0,
        calibrationDueAt: null,
      },
      {
        probeId: "box-7-core",
        unitId: "box-7",
        driver: "modbus-tcp",
        intervalMs: 10_000,
        calibrationOffsetC: 0,
        calibrationDueAt: null,
      },
    ],
  };
}

function readings(from: number, count: number): NewReading[] {
  return Array.from({ length: count }, (_, i) => {
    const unitId = (from + i) % 2 ? "box-7" : "fridge-2";
    return {
      unitId,
      probeId: unitId === "box-7" ? "box-7-core" : "fridge-2-top",
      observedAt: T0 + (from + i) * 1000,
      tempC: 4.5,
      quality: "ok" as const,
    };
  });
}

function telemetrySeqs(messages: Received[]): { seq: number; backfill: boolean; probeId: string }[] {
  return messages.flatMap((m) =>
    m.message.kind === "telemetry"
      ? m.message.payload.readings.map((r) => ({ seq: r.seq, backfill: r.backfill, probeId: r.probeId }))
      : [],
  );
}

function distinct(messages: Received[]): number {
  return new Set(telemetrySeqs(messages).map((r) => r.seq)).size;
}

function publisherSuite(name: string, brokerUrl: () => string) {
  describe(`Publisher over ${name}`, () => {
    let tmp: ReturnType<typeof tempDir>;
    let outbox: Outbox;
    let proxy: TcpProxy;
    let sub: TestSubscriber;
    let publisher: Publisher;
    let siteId: string;
    const agentId = "pi-test";

    beforeEach(async () => {
      tmp = tempDir();
      siteId = `t-${randomBytes(4).toString("hex")}`;
      outbox = Outbox.open({ path: join(tmp.dir, "outbox.db"), agentId, maxReadings: 100_000 });
      proxy = await startTcpProxy(brokerUrl());
      sub = await subscribe(brokerUrl(), `ct/v1/${siteId}/#`);
      publisher = new Publisher({
        siteId,
        agentId,
        settings: settings(proxy.url),
        outbox,
        birth: birthTemplate(agentId, siteId),
        log,
      });
    });

    afterEach(async () => {
      await publisher.stop();
      await sub.clearRetained();
      await sub.close();
      await proxy.close();
      outbox.close();
      tmp.remove();
    });

    it("sends birth then state online, then live batches per unit at QoS 1, and empties the outbox on PUBACK", async () => {
      const connected = new Promise<string>((resolve) => publisher.once("connected", resolve));
      publisher.start();
      const sessionId = await connected;
      outbox.append(readings(0, 10));
      publisher.notify();
      await sub.waitFor((m) => distinct(m) === 10, "10 readings");
      const kinds = sub.messages.map((m) => m.message.kind);
      expect(kinds.indexOf("birth")).toBeLessThan(kinds.indexOf("telemetry"));
      const birth = sub.messages.find((m) => m.message.kind === "birth");
      expect(birth?.message.payload).toMatchObject({ sessionId, nextSeq: 1, agentId });
      const state = sub.messages.find((m) => m.message.kind === "agentState");
      expect(state?.message.payload).toMatchObject({ state: "online", sessionId });
      const telemetry = sub.messages.filter((m) => m.message.kind === "telemetry");
      // One poll cycle, two units: one message per unit.
      expect(telemetry.map((m) => m.topic).sort()).toEqual([
        `ct/v1/${siteId}/agent/${agentId}/telemetry/box-7`,
        `ct/v1/${siteId}/agent/${agentId}/telemetry/fridge-2`,
      ]);
      expect(telemetrySeqs(sub.messages).every((r) => r.backfill === false)).toBe(true);
      await new Promise<void>((resolve) => {
        const check = () => (outbox.stats().depth === 0 ? resolve() : setTimeout(check, 5));
        check();
      });
      expect(publisher.status()).toMatchObject({ connected: true, sessionId });
      expect(publisher.status().lastPublishAt).not.toBeNull();
    });

    it("has its last will published when the link dies, and a new session id on reconnect", async () => {
      const first = new Promise<string>((resolve) => publisher.once("connected", resolve));
      publisher.start();
      const firstSession = await first;
      await sub.waitFor((m) => m.some((x) => x.message.kind === "agentState"), "state online");
      proxy.cut();
      await sub.waitFor(
        (m) => m.some((x) => x.message.kind === "agentState" && x.message.payload.state === "offline"),
        "last will",
      );
      const will = sub.messages.find(
        (x) => x.message.kind === "agentState" && x.message.payload.state === "offline",
      );
      expect(will?.message.payload).toMatchObject({ sessionId: firstSession, state: "offline" });
      expect(will?.message.payload).not.toHaveProperty("reason");
      const second = new Promise<string>((resolve) => publisher.once("connected", resolve));
      proxy.resume();
      const secondSession = await second;
      expect(secondSession).not.toBe(firstSession);
      await sub.waitFor((m) => m.filter((x) => x.message.kind === "birth").length === 2, "second birth");
      await publisher.stop();
      await sub.waitFor(
        (m) => m.some((x) => x.message.kind === "agentState" && x.message.payload.reason === "shutdown"),
        "orderly offline",
      );
      const last = sub.messages.filter((x) => x.message.kind === "agentState").at(-1);
      expect(last?.message.payload).toMatchObject({
        state: "offline",
        reason: "shutdown",
        sessionId: secondSession,
      });
    });

    it("replays a backlog after an outage in order, with many messages in flight, alongside live data", async () => {
      proxy.cut();
      publisher.start();
      outbox.append(readings(0, 3000));
      const maxInflight = { n: 0 };
      publisher.on("acked", () => {
        maxInflight.n = Math.max(maxInflight.n, publisher.status().inflight + 1);
      });
      const connected = new Promise<string>((resolve) => publisher.once("connected", resolve));
      proxy.resume();
      await connected;
      // Live data while the replay runs.
      outbox.append(readings(3000, 20));
      publisher.notify();
      await sub.waitFor((m) => distinct(m) === 3020, "all 3020 readings");
      const got = telemetrySeqs(sub.messages);
      const backfilled = got.filter((r) => r.backfill).map((r) => r.seq);
      const live = got.filter((r) => !r.backfill).map((r) => r.seq);
      expect(new Set(backfilled)).toEqual(new Set(Array.from({ length: 3000 }, (_, i) => i + 1)));
      expect(new Set(live)).toEqual(new Set(Array.from({ length: 20 }, (_, i) => 3001 + i)));
      // Per probe, sequence order equals arrival order in the replay stream.
      for (const probe of ["box-7-core", "fridge-2-top"]) {
        const seqs = got.filter((r) => r.backfill && r.probeId === probe).map((r) => r.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      }
      expect(maxInflight.n).toBeGreaterThan(1);
      await new Promise<void>((resolve) => {
        const check = () => (outbox.stats().depth === 0 ? resolve() : setTimeout(check, 5));
        check();
      });
    });

    it("publishes gap records and deletes them only after PUBACK", async () => {
      const small = Outbox.open({ path: join(tmp.dir, "small.db"), agentId, maxReadings: 10, evictChunk: 5 });
      const p = new Publisher({
        siteId,
        agentId,
        settings: settings(proxy.url),
        outbox: small,
        birth: birthTemplate(agentId, siteId),
        log,
      });
      const { gaps } = small.append(readings(0, 15));
      expect(gaps).toHaveLength(1);
      p.start();
      await sub.waitFor((m) => m.some((x) => x.message.kind === "gap"), "gap record");
      const gap = sub.messages.find((x) => x.message.kind === "gap");
      expect(gap?.message.payload).toMatchObject({
        fromSeq: 1,
        toSeq: 5,
        droppedCount: 5,
        unitIds: ["box-7", "fridge-2"],
      });
      await sub.waitFor((m) => distinct(m) === 10, "the 10 kept readings");
      await new Promise<void>((resolve) => {
        const check = () => (small.stats().gapDepth === 0 ? resolve() : setTimeout(check, 5));
        check();
      });
      await p.stop();
      small.close();
    });
  });
}

await onEachBroker(publisherSuite, (brokerUrl) => {
  // On the embedded broker only: the shared Mosquitto may hold other gateways' retained states.
  it("follows the gateway state topic and reports whether a gateway is listening", async () => {
    const tmp = tempDir();
    const url = brokerUrl();
    const outbox = Outbox.open({ path: join(tmp.dir, "outbox.db"), agentId: "pi-test", maxReadings: 1000 });
    const sub = await subscribe(url, "ct/v1/#");
    const publisher = new Publisher({
      siteId: "store-12",
      agentId: "pi-test",
      settings: settings(url),
      outbox,
      birth: birthTemplate("pi-test", "store-12"),
      log,
    });
    const topic = "ct/v1/_gateway/gw-1/state";
    const say = (state: "online" | "offline") =>
      sub.client.publishAsync(topic, JSON.stringify({ v: 1, gatewayId: "gw-1", state, at: T0 }), {
        qos: 1,
        retain: true,
      });
    await say("online");
    const listening = new Promise<boolean>((resolve) => publisher.once("gateway", resolve));
    expect(publisher.status().gatewayListening).toBeNull();
    publisher.start();
    expect(await listening).toBe(true);
    expect(publisher.status().gatewayListening).toBe(true);
    const gone = new Promise<boolean>((resolve) => publisher.once("gateway", resolve));
    await say("offline");
    expect(await gone).toBe(false);
    expect(publisher.status().gatewayListening).toBe(false);
    await publisher.stop();
    await sub.close();
    outbox.close();
    tmp.remove();
  });
});
