/**
 * An alarm never waits for the bookkeeping of listeners (the lots module correlates lots,
 * computes exposure and quarantines through its own outbox, which can take a while in a busy
 * unit): events are handed to the sink before listeners run.
 */
import { encodePayload, formatTopic } from "@coldtrace/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness, thresholdEngine, until } from "./harness.ts";

const T0 = 1_764_057_600_000;

describe("engine outputs: events before listeners", () => {
  let h: Harness;
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let listenerCalls = 0;

  beforeAll(async () => {
    h = await startHarness({
      agents: [["pi-1", "s1"]],
      engine: thresholdEngine(),
      extensions: [
        () => ({
          name: "slow",
          onEngineOutputs: async () => {
            listenerCalls++;
            await gate; // a slow listener
          },
        }),
      ],
    });
  });
  afterAll(async () => {
    release();
    await h?.close();
  });

  it("publishes the alarm while a listener is still busy with it", async () => {
    const sub = await h.subscriber();
    const events: string[] = [];
    sub.on("message", (topic) => events.push(topic));
    await sub.subscribeAsync("ct/v1/s1/events/#", { qos: 1 });
    const agent = await h.agent("pi-1");
    await agent.publishAsync(
      formatTopic({ kind: "birth", siteId: "s1", agentId: "pi-1" }),
      encodePayload("birth", {
        v: 1,
        agentId: "pi-1",
        siteId: "s1",
        sessionId: "s",
        agentVersion: "1",
        configHash: "c".repeat(64),
        startedAt: T0,
        nextSeq: 1,
        units: [{ unitId: "u1", kind: "fridge", probeIds: ["p1"] }],
        probes: [{ probeId: "p1", unitId: "u1", driver: "modbus-tcp", intervalMs: 1000 }],
      }),
      { qos: 1 },
    );
    const sent = agent.publishAsync(
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
    await until(() => events.includes("ct/v1/s1/events/alarm/u1"), "alarm event");
    expect(listenerCalls).toBe(1); // the listener has it, and has not finished
    release();
    await sent;
  });
});
