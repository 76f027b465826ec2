/** The live hub: filters per browser, readings gathered per flush, replay after a reconnect. */
import { describe, expect, it } from "vitest";
import { LiveHub, type LiveMessage } from "../../src/console/live.ts";
import type { StoredReading } from "../../src/storage/types.ts";

const reading = (siteId: string, unitId: string, tempC: number): StoredReading => ({
  agentId: `${siteId}-pi`,
  seq: 1,
  siteId,
  unitId,
  probeId: `${unitId}-p1`,
  observedAt: 1_000,
  receivedAt: 1_100,
  tempC,
  quality: "ok",
  backfill: false,
});

function browser(filter: { siteId?: string; unitId?: string } = {}) {
  const got: LiveMessage[] = [];
  return { filter, got, send: (m: LiveMessage) => got.push(m), names: () => got.map((m) => m.event) };
}

const hub = () => new LiveHub({ replayEvents: 3, heartbeatMs: 60_000, flushMs: 60_000, now: () => 42 });

describe("LiveHub", () => {
  it("greets each browser, then sends it only what its filter covers", () => {
    const h = hub();
    const all = browser();
    const site2 = browser({ siteId: "s-2" });
    const unit = browser({ unitId: "u-1" });
    for (const b of [all, site2, unit]) h.subscribe(b);
    h.publish("alarm", { alarmId: "a" }, { siteId: "s-1", unitId: "u-1" });
    h.publish("eligibility", { lotId: "L" }, { siteId: "s-2" });
    expect(all.names()).toEqual(["hello", "alarm", "eligibility"]);
    expect(site2.names()).toEqual(["hello", "eligibility"]);
    expect(unit.names()).toEqual(["hello", "alarm", "eligibility"]);
    expect(all.got[0]).toMatchObject({ data: { serverTime: 42, heartbeatMs: 60_000 } });
  });

  it("gathers stored readings into one event per flush, each browser getting its own", () => {
    const h = hub();
    const all = browser();
    const u2 = browser({ unitId: "u-2" });
    h.subscribe(all);
    h.subscribe(u2);
    h.readings([reading("s-1", "u-1", 5), reading("s-1", "u-2", 6)]);
    h.readings([reading("s-1", "u-1", 7)]);
    expect(all.names()).toEqual(["hello"]);
    h.flush();
    const temps = (b: ReturnType<typeof browser>) =>
      ((b.got.at(-1) as LiveMessage).data as { readings: { tempC: number }[] }).readings.map((r) => r.tempC);
    expect(temps(all)).toEqual([5, 6, 7]);
    expect(temps(u2)).toEqual([6]);
    expect(h.readingsSent).toBe(4);
  });

  it("replays what a reconnecting browser missed, from its Last-Event-ID", () => {
    const h = hub();
    const first = browser();
    const off = h.subscribe(first);
    h.publish("alarm", { n: 1 }, {});
    const last = first.got.at(-1)?.id as string;
    off();
    h.publish("alarm", { n: 2 }, {});
    h.publish("alarm", { n: 3 }, {});
    const again = browser();
    h.subscribe(again, last);
    expect(again.got.map((m) => m.data)).toMatchObject([{}, { n: 2 }, { n: 3 }]);
  });

  it("says resync when what was missed is no longer kept, or the gateway restarted", () => {
    const h = hub();
    const b = browser();
    h.subscribe(b);
    h.publish("alarm", { n: 1 }, {});
    const last = b.got.at(-1)?.id as string;
    for (let n = 2; n <= 5; n++) h.publish("alarm", { n }, {}); // the ring keeps 3
    const late = browser();
    h.subscribe(late, last);
    expect(late.names()).toEqual(["hello", "resync"]);
    const other = browser();
    hub().subscribe(other, last);
    expect(other.got[1]).toEqual({ event: "resync", data: { reason: "restarted" } });
  });
});
