/** createAcquisition on a hand-driven clock with a driver injected at the ProbeDriver seam. */
import { describe, expect, it } from "vitest";
import { createAcquisition } from "../../src/acquisition/index.ts";
import { manualClock } from "../../src/clock.ts";
import { busesSchema, type ProbeConfig } from "../../src/config/buses.ts";
import type { ProbeDriver } from "../../src/drivers/types.ts";
import { captureLog, flush } from "./helpers.ts";

const buses = busesSchema.parse([
  {
    id: "tcp-1",
    type: "modbus-tcp",
    host: "127.0.0.1",
    probes: [
      {
        id: "p1",
        unit: "fridge-1",
        slaveId: 1,
        register: 0,
        intervalMs: 60_000,
        staleAfterMs: 3 * 3_600_000,
        calibration: { dueDate: "2026-01-01" },
      },
    ],
  },
]);

function constantDriver(tempC: number): ProbeDriver<ProbeConfig> {
  return {
    open: async () => {},
    isOpen: () => true,
    read: async (probes) => probes.map((p) => ({ probeId: p.id, tempC, quality: "ok" as const })),
    close: async () => {},
  };
}

async function advance(clock: ReturnType<typeof manualClock>, ms: number, step = 60_000) {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    for (let i = 0; i < 6; i++) await flush();
  }
}

describe("createAcquisition", () => {
  it("warns once when a calibration falls due while running, and reports it in health", async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1, 20)); // 20:00 UTC on the due date
    const logs = captureLog();
    const acq = createAcquisition(buses, { log: logs.log, clock, makeDriver: () => constantDriver(5) });
    await acq.start(() => {});
    expect(acq.health()[0]).toMatchObject({
      calibrationOverdue: false,
      calibrationDueAt: Date.UTC(2026, 0, 2) - 1,
    });
    expect(logs.count("probe calibration overdue")).toBe(0);
    await advance(clock, 5 * 3_600_000);
    expect(acq.health()[0]!.calibrationOverdue).toBe(true);
    expect(logs.count("probe calibration overdue")).toBe(1);
    await acq.stop();
  });

  it("marks an unchanging value stale after staleAfterMs, and counts it", async () => {
    const clock = manualClock(Date.UTC(2026, 5, 1));
    const qualities: string[] = [];
    const acq = createAcquisition(buses, {
      log: captureLog().log,
      clock,
      makeDriver: () => constantDriver(4.2),
    });
    await acq.start((r) => qualities.push(r.quality));
    await advance(clock, 4 * 3_600_000);
    await acq.stop();
    // Readings at 0, 1, … 239 min; unchanged for more than 180 min from minute 181 on.
    expect(qualities.indexOf("stale")).toBe(181);
    expect(qualities.slice(181).every((q) => q === "stale")).toBe(true);
    expect(acq.health()[0]!.faults.stale).toBe(qualities.length - 181);
  });

  it("keeps polling when the reading consumer throws", async () => {
    const clock = manualClock(Date.UTC(2026, 5, 1));
    const logs = captureLog();
    let calls = 0;
    const acq = createAcquisition(buses, { log: logs.log, clock, makeDriver: () => constantDriver(4.2) });
    await acq.start(() => {
      calls++;
      throw new Error("consumer bug");
    });
    await advance(clock, 10 * 60_000);
    await acq.stop();
    // Polls at 0, 1, … 9 min (each step fires the timer due at its start).
    expect(calls).toBe(10);
    expect(logs.count("reading consumer failed")).toBe(10);
  });
});
