/**
 * One burst of noise is not a failed probe: a CRC error or a timeout is retried before the
 * probes of that request are marked, and each probe is charged only with its own failures.
 * Against the Modbus simulators over TCP and over a PTY (RTU), faults aimed at one probe's
 * registers.
 */
import {
  type RtuSlaveSim,
  type ScenarioInput,
  startRtuSlave,
  startTcpSlave,
  type TcpSlaveSim,
} from "@coldtrace/simulators";
import { openPtyPair, requireService } from "@coldtrace/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AcquiredReading, type Acquisition, createAcquisition } from "../../src/acquisition/index.ts";
import { type BusConfigInput, busesSchema } from "../../src/config/buses.ts";
import { type CapturedLog, captureLog, waitFor } from "./helpers.ts";

const scenario: ScenarioInput = {
  slaves: [
    {
      id: 1,
      channels: [
        { register: 0, function: 3, baseC: 4.1, noiseC: 0 },
        { register: 10, function: 4, baseC: 5.2, noiseC: 0 },
      ],
    },
  ],
};
const probes = [
  {
    id: "p-fc3",
    unit: "fridge-1",
    slaveId: 1,
    function: 3 as const,
    register: 0,
    scale: 0.1,
    intervalMs: 100,
  },
  {
    id: "p-fc4",
    unit: "fridge-1",
    slaveId: 1,
    function: 4 as const,
    register: 10,
    scale: 0.1,
    intervalMs: 100,
  },
];
const timing = { timeoutMs: 150, retries: 1, backoff: { initialMs: 100, maxMs: 200 } };

function retrySuite(
  name: string,
  setup: () => Promise<{ sim: RtuSlaveSim | TcpSlaveSim; bus: BusConfigInput; close: () => Promise<void> }>,
) {
  describe(`retries and per-probe charging over ${name}`, () => {
    let sim: RtuSlaveSim | TcpSlaveSim;
    let acq: Acquisition;
    let logs: CapturedLog;
    let close: () => Promise<void>;
    const readings: AcquiredReading[] = [];
    const since = (mark: number, id: string) => readings.slice(mark).filter((r) => r.probeId === id);
    const health = (id: string) => acq.health().find((h) => h.probeId === id)!;

    beforeAll(async () => {
      const s = await setup();
      sim = s.sim;
      close = s.close;
      logs = captureLog();
      acq = createAcquisition(busesSchema.parse([s.bus]), { log: logs.log });
      await acq.start((r) => readings.push(r));
      await waitFor(() => readings.filter((r) => r.quality === "ok").length >= 4, "first good readings");
    });
    afterAll(async () => {
      await acq?.stop();
      await close?.();
    });

    it.each([
      ["one CRC error", { corruptNext: 1 }],
      ["one timeout", { silentNext: 1 }],
    ])("retries %s on one probe's registers instead of marking the probe", async (_what, fault) => {
      const mark = readings.length;
      const requests = sim.slave(1).requests;
      sim.setFault(1, { ...fault, target: { function: 3, register: 0 } });
      await waitFor(
        () => sim.slave(1).faults.corruptNext === 0 || sim.slave(1).faults.silentNext === 0,
        "the fault to hit",
      );
      await waitFor(
        () => since(mark, "p-fc3").filter((r) => r.quality === "ok").length >= 3,
        "readings after it",
      );
      expect(since(mark, "p-fc3").map((r) => r.quality)).not.toContain("comm_error");
      expect(since(mark, "p-fc4").map((r) => r.quality)).not.toContain("comm_error");
      expect(health("p-fc3").faults.comm_error).toBe(0);
      // The retry is a real second request on the wire.
      expect(sim.slave(1).requests - requests).toBeGreaterThan(since(mark, "p-fc3").length);
    });

    it("charges a probe whose registers keep failing, and not its neighbour on the same slave", async () => {
      const mark = readings.length;
      const logMark = logs.lines.length;
      sim.setFault(1, { corrupt: true, target: { function: 3, register: 0 } });
      await waitFor(
        () => since(mark, "p-fc3").filter((r) => r.quality === "comm_error").length >= 4,
        "own failures",
      );
      sim.setFault(1, {});
      const failed = since(mark, "p-fc3").filter((r) => r.quality === "comm_error").length;
      // The neighbour's registers answered every time: never marked, never charged, and the
      // slave (which answered) did not back off.
      expect(since(mark, "p-fc4").every((r) => r.quality === "ok")).toBe(true);
      expect(health("p-fc4").faults.comm_error).toBe(0);
      expect(health("p-fc3").faults.comm_error).toBeGreaterThanOrEqual(failed);
      // The warning names the probe's own request, after its retry.
      const warned = logs.lines.slice(logMark).filter((l) => l.msg === "probe read failed");
      expect(warned.length).toBeGreaterThan(0);
      expect(warned.every((l) => l.probeId === "p-fc3")).toBe(true);
      expect(JSON.stringify(warned[0]?.err)).toMatch(/FC3 0\+1: .*\(2 attempts\)/);
      await waitFor(() => readings.at(-1)?.quality === "ok", "recovery");
    });

    it("names each probe's own request when the slave falls silent, and does not charge the one not asked", async () => {
      const mark = readings.length;
      const logMark = logs.lines.length;
      sim.setFault(1, { silent: true, target: { function: 3, register: 0 } });
      await waitFor(
        () => since(mark, "p-fc4").filter((r) => r.quality === "comm_error").length >= 2,
        "silence",
      );
      sim.setFault(1, {});
      const fc4 = health("p-fc4");
      expect(fc4.consecutiveFailures).toBeGreaterThan(0);
      expect(fc4.faults.comm_error).toBe(0);
      const notRead = logs.lines.slice(logMark).filter((l) => l.probeId === "p-fc4" && l.level === 40);
      expect(notRead.map((l) => l.msg)).toEqual(["probe not read"]);
      const text = JSON.stringify(notRead[0]?.err);
      expect(text).toContain("FC4 10+1");
      expect(text).toContain("did not answer FC3 0+1");
      await waitFor(() => since(mark, "p-fc4").at(-1)?.quality === "ok", "recovery", 15_000);
    });
  });
}

retrySuite("Modbus TCP", async () => {
  const sim = await startTcpSlave({ port: 0, scenario });
  return {
    sim,
    bus: { id: "bus-1", type: "modbus-tcp", host: "127.0.0.1", port: sim.port, ...timing, probes },
    close: () => sim.close(),
  };
});

const socat = await requireService("socat");
describe.skipIf(!socat.available)(`RTU ${socat.reason}`, () => {
  retrySuite("Modbus RTU on a PTY", async () => {
    const pty = await openPtyPair();
    const sim = await startRtuSlave({ path: pty.b, baudRate: 38_400, scenario });
    return {
      sim,
      bus: { id: "bus-1", type: "modbus-rtu", port: pty.a, baudRate: 38_400, ...timing, probes },
      close: async () => {
        await sim.close();
        await pty.close();
      },
    };
  });
});
