/**
 * `GET /agents`' `lastSeenAt` follows an agent's telemetry, not only its birth: ingest moves it
 * at most once per LAST_SEEN_RESOLUTION_MS per agent (one record write, off the per-reading
 * path). Driven through `Ingest.accept` with a Clock, on SQLite in memory.
 */
import { encodePayload, formatTopic } from "@coldtrace/protocol";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ingest, LAST_SEEN_RESOLUTION_MS } from "../../src/ingest/ingest.ts";
import { IngestMetrics } from "../../src/ingest/metrics.ts";
import { createStorage, type Storage } from "../../src/storage/index.ts";
import { thresholdEngine } from "./harness.ts";

const T0 = 1_764_057_600_000;
const site = "store-12";
const agentId = "pi-fridge-3";
const unitId = "fridge-2";

describe("agent lastSeenAt", () => {
  let storage: Storage;
  let ingest: Ingest;
  let now = T0;
  let seq = 0;

  beforeAll(async () => {
    storage = await createStorage({
      records: { kind: "sqlite", path: ":memory:" },
      readings: { kind: "sqlite" },
    });
    ingest = new Ingest({
      readings: storage.readings,
      records: storage.records,
      engine: thresholdEngine(),
      sink: { publish: async () => {} },
      metrics: new IngestMetrics(),
      log: pino({ level: "silent" }),
      options: { batchMaxDelayMs: 0, batchMaxReadings: 5000, maxPendingReadings: 100_000 },
      now: () => now,
    });
    await ingest.start();
    ingest.accept(
      formatTopic({ kind: "birth", siteId: site, agentId }),
      encodePayload("birth", {
        v: 1,
        agentId,
        siteId: site,
        sessionId: "s-7f3a",
        agentVersion: "0.1.0",
        configHash: "a".repeat(64),
        startedAt: T0,
        nextSeq: 1,
        units: [{ unitId, kind: "fridge", probeIds: [`${unitId}-top`] }],
        probes: [{ probeId: `${unitId}-top`, unitId, driver: "modbus-rtu", intervalMs: 2000 }],
      }),
    );
    await ingest.flush();
  });
  afterAll(async () => {
    await ingest?.close();
    await storage?.close();
  });

  async function telemetryAt(t: number): Promise<number> {
    now = t;
    seq++;
    ingest.accept(
      formatTopic({ kind: "telemetry", siteId: site, agentId, unitId }),
      encodePayload("telemetry", {
        v: 1,
        agentId,
        unitId,
        sessionId: "s-7f3a",
        sentAt: t,
        readings: [{ seq, probeId: `${unitId}-top`, observedAt: t, tempC: 4.5, quality: "ok" }],
      }),
    );
    await ingest.flush();
    const [agent] = await storage.records.listAgents(site);
    return agent?.lastSeenAt ?? Number.NaN;
  }

  it("is the birth time until telemetry comes, then the telemetry's arrival, updated at most once per period", async () => {
    const [born] = await storage.records.listAgents(site);
    expect(born?.lastSeenAt).toBe(T0);
    // Telemetry every 2 s: the first one moves it, those within the period do not write again.
    expect(await telemetryAt(T0 + 2000)).toBe(T0 + 2000);
    expect(await telemetryAt(T0 + 4000)).toBe(T0 + 2000);
    expect(await telemetryAt(T0 + 2000 + LAST_SEEN_RESOLUTION_MS - 1)).toBe(T0 + 2000);
    // A period after the last update, the next telemetry moves it again.
    expect(await telemetryAt(T0 + 2000 + LAST_SEEN_RESOLUTION_MS)).toBe(T0 + 2000 + LAST_SEEN_RESOLUTION_MS);
    // It never lags its telemetry by more than the period.
    const later = T0 + 10 * 60_000;
    expect(later - (await telemetryAt(later))).toBeLessThan(LAST_SEEN_RESOLUTION_MS);
  });
});
