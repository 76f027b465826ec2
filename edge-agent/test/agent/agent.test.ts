/** The agent runtime with a test double at the acquisition seam: telemetry, health, status, local alarm. */
// biome-ignore-all lint/suspicious/noExplicitAny: tests mutate free-form YAML documents
import { type EmbeddedBroker, freePort, startEmbeddedBroker } from "@coldtrace/testkit";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Agent } from "../../src/agent/index.ts";
import { manualClock } from "../../src/clock.ts";
import { parseConfig } from "../../src/config/index.ts";
import { readOutboxSnapshot } from "../../src/outbox/index.ts";
import { validConfig } from "../helpers/config.ts";
import { FakeAcquisition } from "../helpers/fake-acquisition.ts";
import { subscribe, type TestSubscriber } from "../helpers/subscriber.ts";
import { tempDir } from "../helpers/tmp.ts";

const log = pino({ level: "silent" });
const MIN = 60_000;

function config(dataDir: string, url: string, extra: (c: Record<string, any>) => void = () => {}) {
  const doc: Record<string, any> = validConfig();
  doc.agent.dataDir = dataDir;
  doc.mqtt = { url, reconnect: { minMs: 20, maxMs: 100 }, batch: { delayMs: 5 } };
  doc.units[0].alarmDelayMs = 30 * MIN;
  doc.localAlarm = { outputs: [{ busId: "tcp-1", slaveId: 10, coil: 3 }] };
  extra(doc);
  return parseConfig(doc, "test.yaml");
}

const probes = [
  { probeId: "fridge-2-top", unitId: "fridge-2" },
  { probeId: "box-7-core", unitId: "box-7" },
];

describe("local alarm (no network)", () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.remove());

  it("drives the relay coil after the delay beyond the action limit, and releases it back in range", async () => {
    const clock = manualClock(Date.UTC(2026, 10, 25));
    // Nobody listens on this port: the agent is offline the whole time.
    const cfg = config(tmp.dir, `mqtt://127.0.0.1:${await freePort()}`);
    const acq = new FakeAcquisition(probes);
    const agent = new Agent({ config: cfg, acquisition: acq, log, clock });
    await agent.start();
    const emit = (tempC: number) =>
      acq.emit({
        probeId: "fridge-2-top",
        unitId: "fridge-2",
        observedAt: clock.now(),
        tempC,
        quality: "ok",
      });
    emit(9.1);
    clock.advance(29 * MIN);
    emit(9.4);
    await Promise.resolve();
    expect(acq.coils).toEqual([]);
    clock.advance(2 * MIN);
    await new Promise((r) => setImmediate(r));
    expect(acq.coils).toEqual([{ busId: "tcp-1", slaveId: 10, coil: 3, on: true }]);
    emit(6);
    await new Promise((r) => setImmediate(r));
    expect(acq.coils.at(-1)).toEqual({ busId: "tcp-1", slaveId: 10, coil: 3, on: false });
    // A short excursion that ends before the delay never trips it.
    emit(8.5);
    clock.advance(10 * MIN);
    emit(7.9);
    clock.advance(60 * MIN);
    await new Promise((r) => setImmediate(r));
    expect(acq.coils).toHaveLength(2);
    // Readings were stored while offline.
    expect(agent.outbox.stats().depth).toBe(5);
    await agent.stop();
  });

  it("carries the alarm over a reconfiguration: the delay keeps its start, a tripped relay is released later", async () => {
    const clock = manualClock(Date.UTC(2026, 10, 25));
    const url = `mqtt://127.0.0.1:${await freePort()}`;
    const acqA = new FakeAcquisition(probes);
    const a = new Agent({ config: config(tmp.dir, url), acquisition: acqA, log, clock });
    await a.start();
    acqA.emit({
      probeId: "fridge-2-top",
      unitId: "fridge-2",
      observedAt: clock.now(),
      tempC: 9.2,
      quality: "ok",
    });
    clock.advance(20 * MIN);
    const state = a.alarmSnapshot();
    await a.stop({ reconfigure: true });
    // The same unit under a new configuration: 20 of its 30 minutes are gone already.
    const acqB = new FakeAcquisition(probes);
    const b = new Agent({
      config: config(tmp.dir, url),
      acquisition: acqB,
      log,
      clock,
      ...(state ? { alarmState: state } : {}),
    });
    await b.start();
    clock.advance(11 * MIN);
    await new Promise((r) => setImmediate(r));
    expect(acqB.coils).toEqual([{ busId: "tcp-1", slaveId: 10, coil: 3, on: true }]);
    const tripped = b.alarmSnapshot();
    await b.stop({ reconfigure: true });
    // Tripped, reconfigured again, then back in range: the relay the old agent switched on goes off.
    const acqC = new FakeAcquisition(probes);
    const c = new Agent({
      config: config(tmp.dir, url),
      acquisition: acqC,
      log,
      clock,
      ...(tripped ? { alarmState: tripped } : {}),
    });
    await c.start();
    acqC.emit({
      probeId: "fridge-2-top",
      unitId: "fridge-2",
      observedAt: clock.now(),
      tempC: 5,
      quality: "ok",
    });
    await new Promise((r) => setImmediate(r));
    expect(acqC.coils).toEqual([{ busId: "tcp-1", slaveId: 10, coil: 3, on: false }]);
    await c.stop();
  });

  it("retries a failed relay write on the next reading", async () => {
    const clock = manualClock(Date.UTC(2026, 10, 25));
    const cfg = config(tmp.dir, `mqtt://127.0.0.1:${await freePort()}`);
    const acq = new FakeAcquisition(probes);
    acq.failCoilWrites = 1;
    const agent = new Agent({ config: cfg, acquisition: acq, log, clock });
    await agent.start();
    const emit = (tempC: number) =>
      acq.emit({
        probeId: "fridge-2-top",
        unitId: "fridge-2",
        observedAt: clock.now(),
        tempC,
        quality: "ok",
      });
    emit(1.2);
    clock.advance(31 * MIN);
    await new Promise((r) => setImmediate(r));
    expect(acq.coils).toEqual([]);
    emit(1.1);
    await new Promise((r) => setImmediate(r));
    expect(acq.coils).toEqual([{ busId: "tcp-1", slaveId: 10, coil: 3, on: true }]);
    await agent.stop();
  });
});

describe("agent runtime over the embedded broker", () => {
  let tmp: ReturnType<typeof tempDir>;
  let broker: EmbeddedBroker;
  let sub: TestSubscriber;
  beforeEach(async () => {
    tmp = tempDir();
    broker = await startEmbeddedBroker();
    sub = await subscribe(broker.url, "ct/v1/#");
  });
  afterEach(async () => {
    await sub.close();
    await broker.close();
    tmp.remove();
  });

  it("publishes birth from the config, telemetry, probe health with outbox depth, and writes status", async () => {
    const cfg = config(tmp.dir, broker.url);
    const acq = new FakeAcquisition(probes);
    const agent = new Agent({ config: cfg, acquisition: acq, log });
    await agent.start();
    await sub.waitFor((m) => m.some((x) => x.message.kind === "birth"), "birth");
    const birth = sub.messages.find((x) => x.message.kind === "birth")?.message.payload;
    expect(birth).toMatchObject({
      agentId: "pi-1",
      siteId: "store-12",
      units: [
        { unitId: "fridge-2", kind: "fridge", probeIds: ["fridge-2-top"] },
        { unitId: "box-7", kind: "transit_box", probeIds: ["box-7-core"] },
      ],
      probes: [
        { probeId: "fridge-2-top", driver: "modbus-tcp", intervalMs: 10_000 },
        { probeId: "box-7-core", driver: "modbus-tcp", intervalMs: 60_000 },
      ],
    });
    const t = Date.now();
    acq.emit({ probeId: "fridge-2-top", unitId: "fridge-2", observedAt: t, tempC: 4.2, quality: "ok" });
    acq.emit({ probeId: "box-7-core", unitId: "box-7", observedAt: t, tempC: null, quality: "comm_error" });
    await sub.waitFor(
      (m) => m.filter((x) => x.message.kind === "telemetry").length === 2,
      "two telemetry messages",
    );
    await sub.waitFor((m) => m.some((x) => x.message.kind === "probeHealth"), "probe health");
    const health = sub.messages.find((x) => x.message.kind === "probeHealth");
    expect(health?.message.payload).toMatchObject({ agentId: "pi-1", outbox: { evictedTotal: 0 } });
    // A probe changing state publishes health at once.
    const before = sub.messages.filter((x) => x.message.kind === "probeHealth").length;
    const p = acq.probes[1];
    if (p) p.consecutiveFailures = 3;
    acq.emit({
      probeId: "box-7-core",
      unitId: "box-7",
      observedAt: t + 1,
      tempC: null,
      quality: "comm_error",
    });
    await sub.waitFor(
      (m) => m.filter((x) => x.message.kind === "probeHealth").length > before,
      "health on change",
    );
    await agent.stop();
    const snap = readOutboxSnapshot(cfg.outbox.path);
    expect(snap.depth).toBe(0);
    expect(snap.nextSeq).toBe(4);
    expect(snap.status.lastPublishAt?.value).toEqual(expect.any(Number));
    expect(snap.status.probes?.value).toHaveLength(2);
    await sub.waitFor(
      (m) => m.some((x) => x.message.kind === "agentState" && x.message.payload.reason === "shutdown"),
      "orderly offline",
    );
  });
});
