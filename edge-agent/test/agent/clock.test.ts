/**
 * Clock integrity end to end: the agent runtime with a fake time source (its wall clock two
 * days behind, as a Raspberry Pi without RTC boots) and a fake synchronisation source,
 * publishing to the embedded broker. Readings wait in the outbox while the clock is not
 * synchronised; when NTP steps the clock they are re-anchored from their monotonic time and
 * go out with the right times, flagged `reanchored`. When the clock never syncs, they go out
 * after the hold, flagged `unsynchronised`.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: tests mutate free-form YAML documents
import type { ProbeHealth } from "@coldtrace/protocol";
import { type EmbeddedBroker, startEmbeddedBroker } from "@coldtrace/testkit";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Agent } from "../../src/agent/index.ts";
import { parseConfig } from "../../src/config/index.ts";
import { validConfig } from "../helpers/config.ts";
import { FakeAcquisition } from "../helpers/fake-acquisition.ts";
import { fakeSync, fakeTime } from "../helpers/fake-time.ts";
import { subscribe, type TestSubscriber } from "../helpers/subscriber.ts";
import { tempDir } from "../helpers/tmp.ts";

const DAY = 86_400_000;
const STALE = Date.UTC(2026, 2, 1, 8, 0, 0);
const TRUE_TIME = STALE + 2 * DAY;
const log = pino({ level: "silent" });

describe("clock integrity of the agent", () => {
  let tmp: ReturnType<typeof tempDir>;
  let broker: EmbeddedBroker;
  let sub: TestSubscriber;
  let agent: Agent | undefined;

  beforeEach(async () => {
    tmp = tempDir();
    broker = await startEmbeddedBroker();
    sub = await subscribe(broker.url, "ct/v1/#");
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await sub.close();
    await broker.close();
    tmp.remove();
  });

  function start(holdUnsyncedMs: number) {
    const doc: Record<string, any> = validConfig();
    doc.agent.dataDir = tmp.dir;
    doc.agent.healthIntervalMs = 1000;
    doc.agent.clock = { checkIntervalMs: 100, holdUnsyncedMs };
    doc.mqtt = { url: broker.url, batch: { delayMs: 5 } };
    const config = parseConfig(doc, "test.yaml");
    const time = fakeTime(STALE);
    const sync = fakeSync({ state: "unsynchronised" });
    const acq = new FakeAcquisition([{ probeId: "fridge-2-top", unitId: "fridge-2" }]);
    agent = new Agent({ config, acquisition: acq, log, time, clockSync: sync });
    const emit = (tempC: number) =>
      acq.emit({
        probeId: "fridge-2-top",
        unitId: "fridge-2",
        observedAt: time.wallNow(),
        tempC,
        quality: "ok",
      });
    return { agent, time, sync, emit };
  }

  const telemetry = () =>
    sub.messages.flatMap((m) => (m.message.kind === "telemetry" ? m.message.payload.readings : []));
  const healthAfter = (realMs: number, check: (h: ProbeHealth) => boolean) =>
    sub.waitFor(
      (m) =>
        m.some(
          (x) =>
            x.message.kind === "probeHealth" && x.message.payload.at >= realMs && check(x.message.payload),
        ),
      "probe health",
    );

  it("holds readings while unsynchronised, re-anchors them when NTP steps the clock, then sends them", async () => {
    const { agent: a, time, sync, emit } = start(600_000);
    await a.start();
    await sub.waitFor((m) => m.some((x) => x.message.kind === "birth"), "birth");
    emit(4.1);
    time.advance(10_000);
    emit(4.2);
    time.advance(10_000);
    emit(4.3);
    // Connected, and a health message computed well after the readings' batch delay still
    // finds all three waiting in the outbox: held, not sent.
    const emittedAt = Date.now();
    await healthAfter(
      emittedAt + 200,
      (h) => h.clock?.state === "unsynchronised" && h.clock.untrustedPending === 3,
    );
    expect(telemetry()).toEqual([]);

    // NTP answers: timesyncd steps the clock forward two days and touches its flag file.
    time.advance(5000);
    time.setWall(TRUE_TIME);
    sync.set({ state: "synchronised", lastSyncAt: TRUE_TIME });
    await sub.waitFor(() => telemetry().length === 3, "the three readings");
    // Each was taken 25 s, 15 s and 5 s before the step, by the monotonic clock.
    expect(telemetry().map((r) => [r.tempC, r.observedAt, r.timeQuality])).toEqual([
      [4.1, TRUE_TIME - 25_000, "reanchored"],
      [4.2, TRUE_TIME - 15_000, "reanchored"],
      [4.3, TRUE_TIME - 5000, "reanchored"],
    ]);
    // From now on readings are trusted: no flag at all.
    time.advance(1000);
    emit(4.4);
    await sub.waitFor(() => telemetry().length === 4, "a live reading");
    expect(telemetry()[3]).toMatchObject({ tempC: 4.4, observedAt: TRUE_TIME + 1000 });
    expect(telemetry()[3]?.timeQuality).toBeUndefined();
    await healthAfter(Date.now(), (h) => h.clock?.state === "synchronised" && h.clock.untrustedPending === 0);
    const last = sub.messages.filter((x) => x.message.kind === "probeHealth").at(-1)?.message
      .payload as ProbeHealth;
    // The wall clock moved two days minus the 25 s the monotonic clock had run meanwhile.
    expect(last.clock?.lastJump).toMatchObject({ at: TRUE_TIME, deltaMs: 2 * DAY - 25_000 });
  });

  it("sends readings flagged unsynchronised when the clock does not sync within the hold", async () => {
    const { agent: a, time, emit } = start(300);
    await a.start();
    emit(5.5);
    time.advance(10_000);
    emit(5.6);
    await sub.waitFor(() => telemetry().length === 2, "readings after the hold");
    expect(telemetry().map((r) => [r.tempC, r.observedAt, r.timeQuality])).toEqual([
      [5.5, STALE, "unsynchronised"],
      [5.6, STALE + 10_000, "unsynchronised"],
    ]);
  });
});
