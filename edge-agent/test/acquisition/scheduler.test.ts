/** The per-bus scheduler on a hand-driven clock, with a fake driver at the ProbeDriver seam. */
import { describe, expect, it } from "vitest";
import { manualClock } from "../../src/clock.ts";
import type { ProbeDriver, ProbeRead } from "../../src/drivers/types.ts";
import { backoffDelay, createBusScheduler } from "../../src/scheduler/bus-scheduler.ts";
import { captureLog, flush } from "./helpers.ts";

interface P {
  id: string;
  intervalMs: number;
  slaveId: number;
}

function fakeDriver(dead: Set<number>, opts: { failOpens?: number } = {}) {
  const requests: number[] = [];
  let opens = 0;
  let open = false;
  let inFlight = 0;
  let maxInFlight = 0;
  const driver: ProbeDriver<P> = {
    async open() {
      opens++;
      if (opens <= (opts.failOpens ?? 0)) throw new Error("ENOENT");
      open = true;
    },
    isOpen: () => open,
    async read(probes) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await flush();
      inFlight--;
      requests.push(probes[0]!.slaveId);
      return probes.map(
        (p): ProbeRead =>
          dead.has(p.slaveId)
            ? { probeId: p.id, tempC: null, quality: "comm_error" }
            : { probeId: p.id, tempC: 5, quality: "ok" },
      );
    },
    async close() {
      open = false;
    },
  };
  return { driver, requests, opens: () => opens, maxInFlight: () => maxInFlight };
}

async function run(clock: ReturnType<typeof manualClock>, ms: number, step = 100) {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    for (let i = 0; i < 5; i++) await flush();
  }
}

describe("bus scheduler", () => {
  it("computes capped exponential backoff", () => {
    const policy = { initialMs: 1000, maxMs: 10_000 };
    expect([1, 2, 3, 4, 5, 50].map((n) => backoffDelay(policy, n))).toEqual([
      1000, 2000, 4000, 8000, 10_000, 10_000,
    ]);
  });

  it("polls each probe at its interval, groups by slave, one request at a time", async () => {
    const clock = manualClock();
    const f = fakeDriver(new Set());
    const reads: [string, number][] = [];
    const probes: P[] = [
      { id: "a", intervalMs: 1000, slaveId: 1 },
      { id: "b", intervalMs: 1000, slaveId: 1 },
      { id: "c", intervalMs: 5000, slaveId: 2 },
    ];
    const s = createBusScheduler({
      busId: "bus",
      probes,
      driver: f.driver,
      clock,
      log: captureLog().log,
      backoff: { initialMs: 1000, maxMs: 8000 },
      groupKey: (p) => p.slaveId,
      onRead: (p, _r, at) => reads.push([p.id, at]),
    });
    await s.start();
    await run(clock, 10_000);
    await s.stop();
    const count = (id: string) => reads.filter(([x]) => x === id).length;
    expect(count("a")).toBe(11);
    expect(count("b")).toBe(11);
    expect(count("c")).toBe(3);
    expect(f.requests.filter((x) => x === 1).length).toBe(11); // a and b share one request
    expect(f.maxInFlight()).toBe(1);
  });

  it("backs off a dead slave while the healthy one keeps its cadence", async () => {
    const clock = manualClock();
    const f = fakeDriver(new Set([2]));
    const reads: { id: string; quality: string; attempted: boolean }[] = [];
    const s = createBusScheduler({
      busId: "bus",
      probes: [
        { id: "ok", intervalMs: 1000, slaveId: 1 },
        { id: "dead", intervalMs: 1000, slaveId: 2 },
      ],
      driver: f.driver,
      clock,
      log: captureLog().log,
      backoff: { initialMs: 1000, maxMs: 16_000 },
      groupKey: (p) => p.slaveId,
      onRead: (p, r, _at, attempted) => reads.push({ id: p.id, quality: r.quality, attempted }),
    });
    await s.start();
    await run(clock, 60_000);
    await s.stop();
    const dead = reads.filter((r) => r.id === "dead");
    expect(reads.filter((r) => r.id === "ok" && r.quality === "ok").length).toBe(61);
    expect(dead.every((r) => r.quality === "comm_error")).toBe(true);
    expect(dead.length).toBe(61); // a comm_error reading every interval …
    // … but requests only at 0, 1, 3, 7, 15, 31, 47 s (backoff 1, 2, 4, 8, 16, 16 s).
    expect(f.requests.filter((x) => x === 2).length).toBe(7);
    expect(dead.filter((r) => r.attempted).length).toBe(7);
    expect(s.slaveState(2)).toMatchObject({ failures: 7 });
  });

  it("retries opening a bus with backoff and reports comm_error meanwhile", async () => {
    const clock = manualClock();
    const f = fakeDriver(new Set(), { failOpens: 3 });
    const logs = captureLog();
    const reads: string[] = [];
    const s = createBusScheduler({
      busId: "bus",
      probes: [{ id: "a", intervalMs: 1000, slaveId: 1 }],
      driver: f.driver,
      clock,
      log: logs.log,
      backoff: { initialMs: 1000, maxMs: 8000 },
      groupKey: (p) => p.slaveId,
      onRead: (_p, r) => reads.push(r.quality),
    });
    await s.start();
    await run(clock, 10_000);
    await s.stop();
    // Opens at 0 (fail), 1 s (fail), 3 s (fail), 7 s (ok).
    expect(f.opens()).toBe(4);
    expect(logs.count("bus open failed")).toBe(3);
    expect(reads.slice(0, 7).every((q) => q === "comm_error")).toBe(true);
    expect(reads.at(-1)).toBe("ok");
  });
});
