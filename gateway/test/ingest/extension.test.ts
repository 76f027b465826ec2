/**
 * The extension contract (src/extension/extension.ts) as the lots module uses it: an extension
 * gets the records database, sees engine outputs, sees the events on the gateway's MQTT
 * session and adds authenticated API routes.
 */
import { encodePayload, formatTopic } from "@coldtrace/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../src/api/auth.ts";
import type { DomainEvent } from "../../src/kernel/events.ts";
import { type Harness, startHarness, thresholdEngine, until } from "./harness.ts";

const T0 = 1_764_057_600_000;

describe("gateway extensions", () => {
  let h: Harness;
  const seen: DomainEvent[] = [];
  const wrapped: string[] = [];
  let sawStorage = false;
  const { token, hash } = generateToken();

  beforeAll(async () => {
    h = await startHarness({
      agents: [["pi-1", "s1"]],
      engine: thresholdEngine(),
      config: { api: { host: "127.0.0.1", port: 0, tokens: [{ name: "t", hash }] } },
      extensions: [
        ({ sql }) => {
          sawStorage = sql.kind === "sqlite";
          return {
            name: "probe",
            onEngineOutputs: async (o) => void seen.push(...o),
            async onConnected({ client }) {
              // mqtt.js documents 'packetsend' for every packet the client writes.
              client.on("packetsend", (p) => {
                if (p.cmd === "publish" && p.topic.includes("/events/")) wrapped.push(p.topic);
              });
              return undefined;
            },
            routes: async (app) => {
              app.get("/lots/ping", async () => ({ pong: true }));
            },
          };
        },
      ],
    });
  });
  afterAll(async () => h?.close());

  it("passes storage, outputs, events and routes through the extension", async () => {
    expect(sawStorage).toBe(true);
    const agent = await h.agent("pi-1");
    await agent.publishAsync(
      formatTopic({ kind: "telemetry", siteId: "s1", agentId: "pi-1", unitId: "u1" }),
      encodePayload("telemetry", {
        v: 1,
        agentId: "pi-1",
        unitId: "u1",
        sessionId: "s",
        sentAt: T0,
        readings: [{ seq: 1, probeId: "p1", observedAt: T0, tempC: 9, quality: "ok" }],
      }),
      { qos: 1 },
    );
    // u1 was never born: ingest stores the reading but the engine only sees registered units.
    await until(() => h.gw.metrics.readingsStored === 1, "stored");
    expect(seen).toEqual([]);
    await agent.publishAsync(
      formatTopic({ kind: "birth", siteId: "s1", agentId: "pi-1" }),
      encodePayload("birth", {
        v: 1,
        agentId: "pi-1",
        siteId: "s1",
        sessionId: "s",
        agentVersion: "1",
        configHash: "b".repeat(64),
        startedAt: T0,
        nextSeq: 2,
        units: [{ unitId: "u1", kind: "fridge", probeIds: ["p1"] }],
        probes: [{ probeId: "p1", unitId: "u1", driver: "modbus-tcp", intervalMs: 1000 }],
      }),
      { qos: 1 },
    );
    await agent.publishAsync(
      formatTopic({ kind: "telemetry", siteId: "s1", agentId: "pi-1", unitId: "u1" }),
      encodePayload("telemetry", {
        v: 1,
        agentId: "pi-1",
        unitId: "u1",
        sessionId: "s",
        sentAt: T0,
        readings: [{ seq: 2, probeId: "p1", observedAt: T0 + 1000, tempC: 9, quality: "ok" }],
      }),
      { qos: 1 },
    );
    await until(() => seen.length === 1, "engine output");
    await h.gw.ingest.eventsPublished();
    expect(wrapped).toEqual(["ct/v1/s1/events/alarm/u1"]);
    const res = await h.gw.api?.inject({
      method: "GET",
      url: "/api/v1/lots/ping",
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res?.json()).toEqual({ pong: true });
    const anon = await h.gw.api?.inject({ method: "GET", url: "/api/v1/lots/ping" });
    expect(anon?.statusCode).toBe(401);
  });
});
