/**
 * Ingest without a broker, at its seams: a ReadingStore held on a gate shows the bounded queue
 * (the MQTT client is not released above maxPendingReadings), and a gap record reaches the
 * RecordStore, the listeners and the engine.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { encodePayload, formatTopic } from "@coldtrace/protocol";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpenStorage, openStorage } from "../../src/app/storage.ts";
import { Ingest } from "../../src/ingest/ingest.ts";
import { IngestMetrics } from "../../src/ingest/metrics.ts";
import type { EventSink } from "../../src/kernel/events.ts";
import type { GapRecordRow, ReadingStore } from "../../src/storage/types.ts";
import { thresholdEngine } from "./harness.ts";

const T0 = 1_764_057_600_000;
const topic = formatTopic({ kind: "telemetry", siteId: "s1", agentId: "pi-1", unitId: "u1" });

function batch(from: number, n: number, agentId = "pi-1"): Buffer {
  return encodePayload("telemetry", {
    v: 1,
    agentId,
    unitId: "u1",
    sessionId: "s-1",
    sentAt: T0,
    readings: Array.from({ length: n }, (_, i) => ({
      seq: from + i,
      probeId: "p1",
      observedAt: T0 + (from + i) * 1000,
      tempC: 5,
      quality: "ok" as const,
    })),
  });
}

describe("ingest at its seams", () => {
  let dir: string;
  let storage: OpenStorage;
  const sink: EventSink = { publish: async () => {} };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-bp-"));
    storage = await openStorage({
      records: { backend: "sqlite", path: path.join(dir, "ct.db") },
      readings: { backend: "sqlite" },
    });
  });
  afterAll(async () => {
    await storage?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("holds the MQTT client while more than maxPendingReadings wait, and releases it after", async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    const slow: ReadingStore = {
      ...storage.readings,
      append: async (readings) => {
        await gate;
        return storage.readings.append(readings);
      },
    };
    const metrics = new IngestMetrics();
    const ingest = new Ingest({
      readings: slow,
      records: storage.records,
      engine: thresholdEngine(),
      sink,
      metrics,
      log: pino({ level: "silent" }),
      options: { batchMaxDelayMs: 0, batchMaxReadings: 1000, maxPendingReadings: 250 },
    });
    const released: number[] = [];
    for (let k = 0; k < 5; k++) ingest.handleMessage(topic, batch(1 + k * 100, 100), () => released.push(k));
    // 100 and 200 pending: released at once; from 300 on, held.
    expect(released).toEqual([0, 1]);
    expect(ingest.pendingReadings).toBe(500);
    open();
    await ingest.idle();
    await ingest.flush();
    expect(released).toEqual([0, 1, 2, 3, 4]);
    expect(metrics.readingsStored).toBe(500);
    expect(ingest.pendingReadings).toBe(0);
  });

  /** An ingest on the real SQLite store whose engine and listeners record the gaps they get. */
  function gapIngest() {
    const gaps: GapRecordRow[] = [];
    const evicted: GapRecordRow[] = [];
    const engine = thresholdEngine();
    engine.reportEvictedRange = (g) => {
      evicted.push(g);
      return [];
    };
    const metrics = new IngestMetrics();
    const ingest = new Ingest({
      readings: storage.readings,
      records: storage.records,
      engine,
      sink,
      metrics,
      log: pino({ level: "silent" }),
      options: { batchMaxDelayMs: 0, batchMaxReadings: 1000, maxPendingReadings: 1000 },
      listeners: { onGap: (g) => void gaps.push(g) },
    });
    return { ingest, metrics, gaps, evicted };
  }

  /** The agent's record of readings its outbox evicted: seqs fromSeq..toSeq, one a second. */
  function gapRecord(agentId: string, gapId: string, fromSeq: number, toSeq: number): Buffer {
    return encodePayload("gap", {
      v: 1,
      agentId,
      gapId,
      reason: "outbox_evicted",
      unitIds: ["u1"],
      probeIds: ["p1"],
      fromObservedAt: T0 + fromSeq * 1000,
      toObservedAt: T0 + toSeq * 1000,
      fromSeq,
      toSeq,
      droppedCount: toSeq - fromSeq + 1,
      at: T0 + 7_200_000,
    });
  }

  it("stores a gap record, tells the listeners and the engine", async () => {
    const { ingest, gaps, evicted } = gapIngest();
    ingest.accept(
      formatTopic({ kind: "gap", siteId: "s1", agentId: "pi-9" }),
      gapRecord("pi-9", "gap-1", 1, 360),
    );
    await ingest.flush();
    expect(gaps).toMatchObject([{ gapId: "gap-1", siteId: "s1", droppedCount: 360 }]);
    expect(evicted).toMatchObject([{ gapId: "gap-1", unitIds: ["u1"] }]);
    expect(await storage.records.listGaps({ siteId: "s1" })).toMatchObject([{ gapId: "gap-1", toSeq: 360 }]);
  });

  it("drops an eviction whose every reading had arrived (in flight when evicted), keeps the rest", async () => {
    const { ingest, metrics, gaps, evicted } = gapIngest();
    const gapTopic = formatTopic({ kind: "gap", siteId: "s1", agentId: "pi-7" });
    // Seqs 1..10 were published and stored before the agent evicted them unacknowledged.
    ingest.accept(
      formatTopic({ kind: "telemetry", siteId: "s1", agentId: "pi-7", unitId: "u1" }),
      batch(1, 10, "pi-7"),
    );
    ingest.accept(gapTopic, gapRecord("pi-7", "gap-in-flight", 1, 10));
    ingest.accept(gapTopic, gapRecord("pi-7", "gap-real", 5, 12)); // 11 and 12 never arrived
    await ingest.flush();
    expect(metrics.gapsFullyReceived).toBe(1);
    expect(gaps.map((g) => g.gapId)).toEqual(["gap-real"]);
    expect(evicted.map((g) => g.gapId)).toEqual(["gap-real"]);
    // 5..10 arrived: what was lost (11, 12) lies after reading 10, not from reading 5 on.
    expect(evicted[0]).toMatchObject({ fromObservedAt: T0 + 10_000, toObservedAt: T0 + 12_000 });
    expect((await storage.records.listGaps({ siteId: "s1" })).map((g) => g.gapId)).not.toContain(
      "gap-in-flight",
    );
  });

  it("narrows the recording gap to the readings that went missing in the middle of the range", async () => {
    const { ingest, evicted } = gapIngest();
    const tel = formatTopic({ kind: "telemetry", siteId: "s1", agentId: "pi-6", unitId: "u1" });
    ingest.accept(tel, batch(1, 4, "pi-6"));
    ingest.accept(tel, batch(7, 4, "pi-6")); // 5 and 6 never arrived
    ingest.accept(
      formatTopic({ kind: "gap", siteId: "s1", agentId: "pi-6" }),
      gapRecord("pi-6", "gap-mid", 1, 10),
    );
    await ingest.flush();
    expect(evicted).toMatchObject([{ gapId: "gap-mid", fromObservedAt: T0 + 4000, toObservedAt: T0 + 7000 }]);
    expect(await storage.records.listGaps({ siteId: "s1" })).toContainEqual(
      expect.objectContaining({ gapId: "gap-mid", fromObservedAt: T0 + 4000, toObservedAt: T0 + 7000 }),
    );
  });
});
