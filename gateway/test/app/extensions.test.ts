/**
 * The host side of the extension contract (src/extension/extension.ts): the life cycle in
 * order, the unit directory with profiles resolved by the excursions module, subscriptions on
 * the gateway's MQTT session, and wiring mistakes refused at start.
 */
import { encodePayload, formatTopic } from "@coldtrace/protocol";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway } from "../../src/app/gateway.ts";
import { openStorage } from "../../src/app/storage.ts";
import { CredentialStore } from "../../src/broker/credentials.ts";
import { parseGatewayConfig } from "../../src/config/load.ts";
import type { ExtensionContext, ExtensionFactory } from "../../src/extension/extension.ts";
import { type Harness, startHarness, thresholdEngine, until } from "../ingest/harness.ts";

const T0 = 1_764_057_600_000;

describe("extensions in the running gateway", () => {
  let h: Harness;
  const steps: string[] = [];
  let ctx: ExtensionContext | undefined;
  const received: { topic: string; payload: string }[] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });

  const recorder: ExtensionFactory = (c) => {
    ctx = c;
    steps.push("factory");
    return {
      name: "recorder",
      async start() {
        steps.push("start");
      },
      subscriptions: [
        {
          filter: "test/fleet/+/ack",
          async onMessage(topic, payload) {
            received.push({ topic, payload: payload.toString() });
            await gate;
          },
        },
      ],
      async onConnected() {
        steps.push("connected");
        return async () => void steps.push("disconnected");
      },
      async stop() {
        steps.push("stop");
      },
    };
  };

  // A second module on the same filter and a third on an overlapping one: the broker sends the
  // gateway one copy, and every one of them must get it.
  const twins: { name: string; topic: string }[] = [];
  const listener =
    (name: string, filter: string): ExtensionFactory =>
    () => ({
      name,
      subscriptions: [{ filter, onMessage: async (topic) => void twins.push({ name, topic }) }],
    });

  beforeAll(async () => {
    h = await startHarness({
      agents: [["pi-1", "s1"]],
      config: { profiles: { byUnit: { u1: { hysteresisC: 1.5 } }, byKind: {} } },
      extensions: [recorder, listener("twin", "test/fleet/+/ack"), listener("wide", "test/#")],
    });
  });
  afterAll(async () => {
    release();
    await h?.close();
    // Stopped in reverse: the session's cleanup before the extension's stop.
    expect(steps).toEqual(["factory", "start", "connected", "disconnected", "stop"]);
  });

  it("runs factory, start and onConnected in order, and knows the built-ins by name", () => {
    expect(steps).toEqual(["factory", "start", "connected"]);
    expect([...h.gw.extensions.keys()]).toEqual([
      "excursions",
      "lots",
      "grafana",
      "notify",
      "fleet",
      "recorder",
      "twin",
      "wide",
    ]);
  });

  it("fills the unit directory from births, with the profile the excursions module resolves", async () => {
    const agent = await h.agent("pi-1");
    await agent.publishAsync(
      formatTopic({ kind: "birth", siteId: "s1", agentId: "pi-1" }),
      encodePayload("birth", {
        v: 1,
        agentId: "pi-1",
        siteId: "s1",
        sessionId: "s",
        agentVersion: "1",
        configHash: "d".repeat(64),
        startedAt: T0,
        nextSeq: 1,
        units: [
          { unitId: "u1", kind: "fridge", probeIds: ["p1"] },
          { unitId: "u2", kind: "freezer", probeIds: ["p2"] },
        ],
        probes: [
          { probeId: "p1", unitId: "u1", driver: "modbus-tcp", intervalMs: 1000 },
          { probeId: "p2", unitId: "u2", driver: "modbus-tcp", intervalMs: 1000 },
        ],
      }),
      { qos: 1 },
    );
    await until(() => h.gw.units.get("u2") !== undefined, "units registered");
    expect(ctx?.units.list("s1")).toEqual([
      { unitId: "u1", siteId: "s1", kind: "fridge", probeIds: ["p1"] },
      { unitId: "u2", siteId: "s1", kind: "freezer", probeIds: ["p2"] },
    ]);
    expect(ctx?.units.profile("u1")).toMatchObject({
      kind: "fridge",
      hysteresisC: 1.5,
      range: { low: 2, high: 8 },
    });
    expect(ctx?.units.profile("u2")).toMatchObject({
      kind: "freezer",
      hysteresisC: 0.5,
      range: { high: -20 },
    });
    expect(ctx?.units.profile("u9")).toBeUndefined();
  });

  it("hands messages of an extension's filter to it, not to ingest", async () => {
    const rejectedBefore = h.gw.metrics.rejectedTotal();
    const peer = await h.subscriber(); // the gateway account may publish outside the contract tree
    await peer.publishAsync("test/fleet/pi-1/ack", "config 7 applied", { qos: 1 });
    await until(() => received.length === 1, "extension message");
    expect(received).toEqual([{ topic: "test/fleet/pi-1/ack", payload: "config 7 applied" }]);
    await until(() => twins.length === 2, "the same message for the twin and the wide filter");
    expect(twins.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: "twin", topic: "test/fleet/pi-1/ack" },
      { name: "wide", topic: "test/fleet/pi-1/ack" },
    ]);
    // Ingest would have rejected it: the topic is outside the contract tree.
    expect(h.gw.metrics.rejectedTotal()).toBe(rejectedBefore);
  });
});

describe("wiring mistakes", () => {
  const start = async (extensions: ExtensionFactory[]) => {
    const config = parseGatewayConfig({
      broker: { host: "127.0.0.1", port: 0 },
      api: { enabled: false },
      storage: { records: { backend: "sqlite", path: ":memory:" }, readings: { backend: "sqlite" } },
    });
    const storage = await openStorage(config.storage);
    try {
      const gw = await startGateway({
        config,
        log: pino({ level: "silent" }),
        storage,
        credentials: new CredentialStore(),
        extensions,
      });
      await gw.stop();
    } finally {
      await storage.close();
    }
  };

  it("refuses two engines, two profile resolvers and two extensions of one name", async () => {
    const engine =
      (name: string): ExtensionFactory =>
      () => ({ name, engine: thresholdEngine() });
    await expect(start([engine("a"), engine("b")])).rejects.toThrow("extensions a, b all provide engine");
    const profiles =
      (name: string): ExtensionFactory =>
      () => ({ name, unitProfile: () => undefined as never });
    await expect(start([profiles("a"), profiles("b")])).rejects.toThrow("all provide unitProfile");
    await expect(start([engine("a"), () => ({ name: "a" })])).rejects.toThrow('two extensions are named "a"');
    await expect(start([engine("a")])).resolves.toBeUndefined();
  });
});
