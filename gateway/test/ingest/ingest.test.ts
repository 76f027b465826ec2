/**
 * Ingest through a real embedded broker into SQLite: contract validation, dedupe across
 * replays, births and states, engine outputs persisted and published as contract events.
 */
import {
  decodeMessage,
  encodePayload,
  formatTopic,
  type telemetry as telemetrySchema,
} from "@coldtrace/protocol";
import type { z } from "zod";

type TelemetryInput = z.input<typeof telemetrySchema>;

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness, thresholdEngine, until } from "./harness.ts";

const T0 = 1_764_057_600_000;
const site = "store-1";

function telemetry(agentId: string, unitId: string, seqs: number[], tempC = (_s: number) => 4.5): Buffer {
  const value: TelemetryInput = {
    v: 1,
    agentId,
    unitId,
    sessionId: "s-1",
    sentAt: T0,
    readings: seqs.map((seq) => ({
      seq,
      probeId: `${unitId}-top`,
      observedAt: T0 + seq * 10_000,
      tempC: tempC(seq),
      quality: "ok" as const,
    })),
  };
  return encodePayload("telemetry", value);
}

function birth(agentId: string, unitId: string) {
  return encodePayload("birth", {
    v: 1,
    agentId,
    siteId: site,
    sessionId: "s-1",
    agentVersion: "0.1.0",
    configHash: "a".repeat(64),
    startedAt: T0,
    nextSeq: 1,
    units: [{ unitId, kind: "fridge", probeIds: [`${unitId}-top`] }],
    probes: [{ probeId: `${unitId}-top`, unitId, driver: "modbus-rtu", intervalMs: 10_000 }],
  });
}

describe("ingest", () => {
  let h: Harness;
  const engine = thresholdEngine();

  beforeAll(async () => {
    h = await startHarness({
      agents: [
        ["pi-1", site],
        ["pi-2", site],
      ],
      engine,
    });
  });
  afterAll(async () => h?.close());

  const tel = (agentId: string, unitId: string) =>
    formatTopic({ kind: "telemetry", siteId: site, agentId, unitId });

  it("rejects malformed payloads, counts them by reason, logs topic and reason, and keeps going", async () => {
    const agent = await h.agent("pi-1");
    const topic = tel("pi-1", "fridge-1");
    await agent.publishAsync(topic, "not json", { qos: 1 });
    await agent.publishAsync(topic, JSON.stringify({ v: 1, agentId: "pi-1" }), { qos: 1 });
    await agent.publishAsync(topic, telemetry("pi-1", "fridge-OTHER", [1]), { qos: 1 }); // unit ≠ topic
    await agent.publishAsync(topic, Buffer.from([0xff, 0xfe, 0x00]), { qos: 1 });
    await agent.publishAsync(topic, telemetry("pi-1", "fridge-1", [1, 2, 3]), { qos: 1 });
    await until(() => h.gw.metrics.readingsStored >= 3, "3 readings stored");

    expect(h.gw.metrics.rejected.get("CT_WIRE_INVALID")).toBe(4);
    const warns = h.logs.filter((l) => l.msg === "message rejected");
    expect(warns).toHaveLength(4);
    for (const w of warns) {
      expect(w.level).toBe(40);
      expect(w.topic).toBe(topic);
    }
    expect(String(warns[2]?.reason)).toContain("unitId: does not match the topic");
    const stored = await h.gw.storage.readings.range({ unitId: "fridge-1", from: 0, to: T0 * 2 });
    expect(stored.map((r) => r.seq)).toEqual([1, 2, 3]);
  });

  it("dedupes replayed, duplicated and out-of-order batches by (agent, seq)", async () => {
    const agent = await h.agent("pi-2");
    const topic = tel("pi-2", "fridge-2");
    const before = h.gw.metrics.readingsDuplicate;
    const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
    await Promise.all([
      agent.publishAsync(topic, telemetry("pi-2", "fridge-2", range(51, 100)), { qos: 1 }),
      agent.publishAsync(topic, telemetry("pi-2", "fridge-2", range(1, 60)), { qos: 1 }),
      agent.publishAsync(topic, telemetry("pi-2", "fridge-2", range(1, 60)), { qos: 1 }),
      agent.publishAsync(topic, telemetry("pi-2", "fridge-2", range(90, 120).reverse()), { qos: 1 }),
    ]);
    await until(
      () => h.gw.metrics.readingsDuplicate - before >= 10 + 60 + 11 && h.gw.ingest.pendingReadings === 0,
      "all batches processed",
    );
    await h.gw.ingest.idle();
    const stored = await h.gw.storage.readings.range({ unitId: "fridge-2", from: 0, to: T0 * 2 });
    expect(stored.map((r) => r.seq)).toEqual(range(1, 120));
    expect(h.gw.metrics.readingsDuplicate - before).toBe(81);
  });

  it("registers units and probes from a birth, and ignores a last will of an older session", async () => {
    const agent = await h.agent("pi-1");
    await agent.publishAsync(
      formatTopic({ kind: "birth", siteId: site, agentId: "pi-1" }),
      birth("pi-1", "fridge-1"),
      {
        qos: 1,
        retain: true,
      },
    );
    const stateTopic = formatTopic({ kind: "agentState", siteId: site, agentId: "pi-1" });
    await agent.publishAsync(
      stateTopic,
      encodePayload("agentState", { v: 1, agentId: "pi-1", state: "offline", sessionId: "s-OLD", at: T0 }),
      { qos: 1 },
    );
    await until(() => (h.gw.metrics.messagesByKind.get("agentState") ?? 0) >= 1, "state");
    await h.gw.ingest.idle();
    expect(engine.units.get("fridge-1")).toMatchObject({
      siteId: site,
      kind: "fridge",
      probeIds: ["fridge-1-top"],
    });
    expect(await h.gw.storage.records.listProbes("fridge-1")).toMatchObject([
      { probeId: "fridge-1-top", agentId: "pi-1", intervalMs: 10_000 },
    ]);
    expect(await h.gw.storage.records.listAgents(site)).toMatchObject([
      { agentId: "pi-1", state: "online", sessionId: "s-1" },
    ]);

    await agent.publishAsync(
      stateTopic,
      encodePayload("agentState", {
        v: 1,
        agentId: "pi-1",
        state: "offline",
        sessionId: "s-1",
        at: T0,
        reason: "shutdown",
      }),
      { qos: 1 },
    );
    await until(() => (h.gw.metrics.messagesByKind.get("agentState") ?? 0) >= 2, "state");
    await h.gw.ingest.idle();
    expect(await h.gw.storage.records.listAgents(site)).toMatchObject([
      { agentId: "pi-1", state: "offline" },
    ]);
  });

  it("stores readings of a unit no birth announced, counts them and warns once", async () => {
    const agent = await h.agent("pi-2");
    const before = h.gw.metrics.readingsUnknownUnit;
    const seenBefore = engine.seen.length;
    await agent.publishAsync(
      tel("pi-2", "fridge-nobirth"),
      telemetry("pi-2", "fridge-nobirth", [9001, 9002]),
      {
        qos: 1,
      },
    );
    await agent.publishAsync(tel("pi-2", "fridge-nobirth"), telemetry("pi-2", "fridge-nobirth", [9003]), {
      qos: 1,
    });
    await until(() => h.gw.metrics.readingsUnknownUnit - before === 3, "3 unknown-unit readings");
    expect(engine.seen.slice(seenBefore).filter((r) => r.unitId === "fridge-nobirth")).toEqual([]);
    const stored = await h.gw.storage.readings.range({
      unitId: "fridge-nobirth",
      from: 0,
      to: Number.MAX_SAFE_INTEGER,
    });
    expect(stored.map((r) => r.seq)).toEqual([9001, 9002, 9003]);
    const warnings = h.logs.filter((l) => l.unitId === "fridge-nobirth" && l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toContain("no agent birth announced");
    const line = /^coldtrace_ingest_readings_unknown_unit_total (\d+)$/m.exec(h.gw.metrics.render());
    expect(Number(line?.[1])).toBe(h.gw.metrics.readingsUnknownUnit);
  });

  it("feeds only new readings to the engine, stores its alarm and publishes it at QoS 1", async () => {
    const sub = await h.subscriber();
    const alarmTopic = formatTopic({ kind: "alarm", siteId: site, unitId: "fridge-1" });
    const got = new Promise<ReturnType<typeof decodeMessage>>((resolve) =>
      sub.on("message", (t, p) => {
        if (t === alarmTopic) resolve(decodeMessage(t, p));
      }),
    );
    await sub.subscribeAsync(alarmTopic, { qos: 1 });
    const agent = await h.agent("pi-1");
    const seenBefore = engine.seen.length;
    // seq 3 is a duplicate of the first test; only 4 and 5 are new.
    await agent.publishAsync(
      tel("pi-1", "fridge-1"),
      telemetry("pi-1", "fridge-1", [3, 4, 5], (s) => (s === 5 ? 9.5 : 5)),
      {
        qos: 1,
      },
    );
    const msg = await got;
    expect(msg).toMatchObject({
      kind: "alarm",
      payload: { type: "alarm.raised", unitId: "fridge-1", at: T0 + 50_000 },
    });
    expect(engine.seen.slice(seenBefore).map((r) => r.seq)).toEqual([4, 5]);
    expect(await h.gw.storage.records.getAlarm("alarm-fridge-1")).toMatchObject({
      state: "raised",
      raisedAt: T0 + 50_000,
    });
    await h.gw.ingest.eventsPublished();
    expect(h.gw.metrics.render()).toMatch(/coldtrace_events_published_total [1-9]/);
    // Operators see alarms in the log too, with what identifies them.
    expect(h.logs).toContainEqual(
      expect.objectContaining({
        msg: "alarm raised",
        alarmId: "alarm-fridge-1",
        unitId: "fridge-1",
        siteId: site,
      }),
    );
  });
});
