import { encodePayload, formatTopic } from "@coldtrace/protocol";
import { connectAsync, type MqttClient } from "mqtt";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { CredentialStore } from "../../src/broker/credentials.ts";
import { startEmbeddedBroker } from "../../src/broker/embedded.ts";
import { type Harness, startHarness, until } from "../ingest/harness.ts";

const T0 = Date.UTC(2026, 10, 25, 8, 0, 0);

function telemetry(agentId: string, unitId: string, seq: number): Buffer {
  return encodePayload("telemetry", {
    v: 1,
    agentId,
    unitId,
    sessionId: "s-1",
    sentAt: T0 + seq * 60_000,
    readings: [{ seq, probeId: `${unitId}-p1`, observedAt: T0 + seq * 60_000, tempC: 4.5, quality: "ok" }],
  } as never);
}

/** The handoff (broker/embedded.ts) relies on aedes clearing what authorizeForward withholds. */
describe("embedded broker: the gateway's own session after the handoff", () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("holds nothing for agent data that ingest already committed", async () => {
    h = await startHarness({ agents: [["pi-h", "store-h"]] });
    const agent = await h.agent("pi-h");
    const topic = formatTopic({ kind: "telemetry", siteId: "store-h", agentId: "pi-h", unitId: "fridge-h" });
    for (let seq = 1; seq <= 200; seq++)
      await agent.publishAsync(topic, telemetry("pi-h", "fridge-h", seq), { qos: 1 });
    const gw = h.gw;
    await until(() => gw.metrics.readingsStored === 200, "200 stored");
    // The gateway's client subscribes in a persistent session, so aedes queues every agent
    // message for it; the handoff skips delivering those, and aedes must clear them, or the
    // queue would grow forever and be replayed in full on the gateway's next reconnect.
    const gatewayClientId = `coldtrace-gateway-${gw.config.gatewayId}`;
    const aedes = gw.broker?.aedes as unknown as {
      clients: Record<string, { clean: boolean }>;
      persistence: { outgoingStream(c: { id: string }): { toArray(): Promise<unknown[]> } };
    };
    expect(aedes.clients[gatewayClientId]?.clean).toBe(false);
    await until(
      () => gw.broker?.queues.queued(gatewayClientId).messages === 0,
      "gateway session queue empty",
    );
    expect(await aedes.persistence.outgoingStream({ id: gatewayClientId }).toArray()).toEqual([]);
  });

  it("clears only the handed message from the gateway's session, not one waiting for delivery", async () => {
    // Deterministic: the agent's handed telemetry is committed at the moment a probe-health
    // message (delivered as usual) has been queued for the gateway's session but not yet
    // sent. aedes then clears the handed one from that session by message id, which it has
    // not been given yet (undefined) — without care that removes the health message, and
    // aedes, failing to send it ("no such packet"), drops the gateway's connection.
    const credentials = new CredentialStore();
    const secrets: Record<string, string> = {};
    for (const id of ["pi-a", "pi-b"])
      secrets[id] = (
        await credentials.add({ username: id, role: "agent", siteIds: ["s1"], agentId: id })
      ).secret;
    const logs: { msg: string; err?: string }[] = [];
    const log = pino({ level: "info" }, { write: (l: string) => void logs.push(JSON.parse(l)) });
    const broker = await startEmbeddedBroker({
      host: "127.0.0.1",
      port: 0,
      drainTimeoutMs: 2000,
      queueLimit: 42,
      concurrency: 100,
      credentials,
      log,
    });
    const clients: MqttClient[] = [];
    try {
      const gateway = await connectAsync(broker.url, {
        ...broker.gatewayAccount,
        clientId: "coldtrace-gateway-t",
        clean: false,
        reconnectPeriod: 0,
      });
      clients.push(gateway);
      await gateway.subscribeAsync("ct/v1/s1/agent/#", { qos: 1 });
      const received: string[] = [];
      gateway.on("message", (topic) => received.push(topic));

      let commit: (() => void) | undefined;
      broker.setHandoff(() => new Promise<void>((resolve) => (commit = resolve)));
      // When the health message is queued for the gateway, commit the handed telemetry.
      const persistence = (
        broker.aedes as unknown as { persistence: Record<string, (...a: never[]) => Promise<void>> }
      ).persistence;
      const enqueue = persistence.outgoingEnqueueCombi as (
        subs: unknown[],
        packet: { topic: string },
      ) => Promise<void>;
      persistence.outgoingEnqueueCombi = (async (subs: unknown[], packet: { topic: string }) => {
        await enqueue(subs, packet);
        if (packet.topic.endsWith("/health")) commit?.();
      }) as never;

      const agent = async (id: string) => {
        const c = await connectAsync(broker.url, {
          clientId: id,
          username: id,
          password: secrets[id],
          reconnectPeriod: 0,
        });
        clients.push(c);
        return c;
      };
      const a = await agent("pi-a");
      const b = await agent("pi-b");
      const handed = a.publishAsync(
        formatTopic({ kind: "telemetry", siteId: "s1", agentId: "pi-a", unitId: "u1" }),
        telemetry("pi-a", "u1", 1),
        { qos: 1 },
      );
      await until(() => commit !== undefined, "the telemetry waiting in the handoff");
      const healthTopic = formatTopic({ kind: "probeHealth", siteId: "s1", agentId: "pi-b" });
      await b.publishAsync(healthTopic, "{}", { qos: 1 });
      await handed;
      await until(() => received.includes(healthTopic), "health delivered to the gateway");
      await new Promise((r) => setTimeout(r, 100));
      expect(gateway.connected).toBe(true);
      expect(logs.filter((l) => l.msg === "gateway client connection failed")).toEqual([]);
      expect(received).not.toContain(
        formatTopic({ kind: "telemetry", siteId: "s1", agentId: "pi-a", unitId: "u1" }),
      );
      await until(() => broker.queues.queued("coldtrace-gateway-t").messages === 0, "gateway session empty");
    } finally {
      for (const c of clients) c.end(true);
      await broker.close();
    }
  });
});
