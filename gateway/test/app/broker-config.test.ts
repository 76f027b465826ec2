/** The running gateway hands its broker settings to the embedded broker and reports drops on /metrics. */
import { connectAsync } from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness, until } from "../ingest/harness.ts";

describe("gateway runtime: offline queue bound from the configuration", () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("keeps broker.maxQueuedMessages for an offline persistent session and counts the rest", async () => {
    h = await startHarness({
      agents: [["pi-q", "store-q"]],
      config: {
        broker: { host: "127.0.0.1", port: 0, maxQueuedMessages: 2 },
        api: { host: "127.0.0.1", port: 0 },
      },
    });
    const gw = h.gw;
    const topic = "ct/v1/store-q/agent/pi-q/health";
    // The agent subscribes to its own topic in a persistent session, then goes offline.
    const agent = await connectAsync(gw.brokerUrl, {
      clientId: "pi-q",
      username: "pi-q",
      password: h.secrets["pi-q"],
      clean: false,
      reconnectPeriod: 0,
    });
    await agent.subscribeAsync(topic, { qos: 1 });
    await agent.endAsync();
    const publisher = await h.subscriber();
    for (let i = 0; i < 5; i++) await publisher.publishAsync(topic, `m${i}`, { qos: 1 });
    await until(() => (gw.broker?.queues.droppedTotal() ?? 0) === 3, "3 drops");
    expect(gw.broker?.queues.queued("pi-q").messages).toBe(2);
    const metrics = await (await fetch(`${gw.apiUrl}/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE coldtrace_broker_offline_queue_dropped_total counter$/m);
    expect(metrics).toMatch(/^coldtrace_broker_offline_queue_dropped_total 3$/m);
    // The engine's memory and what it set aside, for whoever watches the gateway.
    expect(metrics).toMatch(/^coldtrace_engine_retained_readings 0$/m);
    expect(metrics).toMatch(/^# TYPE coldtrace_engine_readings_set_aside_total counter$/m);
    expect(metrics).toMatch(/^coldtrace_engine_readings_set_aside_total\{reason="future"\} 0$/m);
  });
});
