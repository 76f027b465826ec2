import { encodePayload, formatTopic } from "@coldtrace/protocol";
import { afterEach, describe, expect, it } from "vitest";
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
});
