/**
 * Acquisition against the Modbus simulators over Modbus TCP and over a real pseudo-terminal
 * pair (socat) with the agent's RTU line port under modbus-serial: values for every type × word order,
 * a dead slave backing off while the healthy ones keep being polled, bad frames, sensor-fault
 * sentinels, stale values, calibration, a bus that cannot open, and coil writes.
 */
import {
  type RtuSlaveSim,
  type ScenarioInput,
  startRtuSlave,
  startTcpSlave,
  type TcpSlaveSim,
} from "@coldtrace/simulators";
import { openPtyPair, type PtyPair, requireService } from "@coldtrace/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AcquiredReading, type Acquisition, createAcquisition } from "../../src/acquisition/index.ts";
import {
  type BusConfigInput,
  busesSchema,
  type RegisterType,
  type WordOrder,
} from "../../src/config/buses.ts";
import { type CapturedLog, captureLog, waitFor } from "./helpers.ts";

const types: RegisterType[] = ["int16", "uint16", "int32", "uint32", "float32"];
const orders: WordOrder[] = ["ABCD", "CDAB", "BADC", "DCBA"];
const scaleOf = (t: RegisterType) => (t === "float32" ? 1 : t.endsWith("16") ? 0.01 : 0.001);

/** One channel per type × word order on slave 1, registers 0, 2, 4 … with a distinct value each. */
const variants = types.flatMap((type, i) =>
  orders.map((wordOrder, j) => ({
    id: `v-${type}-${wordOrder}`,
    register: (i * 4 + j) * 2,
    type,
    wordOrder,
    scale: scaleOf(type),
    // Negative values for the signed types, so sign handling is checked too.
    expected: (type.startsWith("u") ? 1 : -1) * (2.5 + i + j / 4),
  })),
);

const scenario: ScenarioInput = {
  turnaroundMs: 1,
  slaves: [
    {
      id: 1,
      size: 300,
      channels: [
        ...variants.map((v) => ({
          register: v.register,
          type: v.type,
          wordOrder: v.wordOrder,
          scale: v.scale,
          baseC: v.expected,
          noiseC: 0,
        })),
        { register: 100, function: 4, type: "float32", wordOrder: "CDAB", scale: 1, baseC: 4.62, noiseC: 0 },
        { register: 200, type: "int16", scale: 0.1, baseC: 5.0, noiseC: 0 },
      ],
    },
    { id: 2, channels: [{ register: 0, baseC: 5, noiseC: 0 }] },
    {
      id: 3,
      channels: [
        { register: 0, baseC: 3.3, noiseC: 0 },
        { register: 10, baseC: 7.1, noiseC: 0 },
      ],
    },
  ],
};

function probes(unit: string) {
  return [
    ...variants.map((v) => ({
      id: v.id,
      unit,
      slaveId: 1,
      register: v.register,
      type: v.type,
      wordOrder: v.wordOrder,
      scale: v.scale,
      intervalMs: 100,
    })),
    {
      id: "fc4",
      unit,
      slaveId: 1,
      function: 4 as const,
      register: 100,
      type: "float32" as const,
      wordOrder: "CDAB" as const,
      intervalMs: 100,
    },
    {
      id: "calibrated",
      unit,
      slaveId: 1,
      register: 200,
      scale: 0.1,
      intervalMs: 100,
      calibration: { offsetC: -0.4, dueDate: "2020-01-31" },
    },
    { id: "dead", unit, slaveId: 2, register: 0, scale: 0.1, intervalMs: 100 },
    { id: "faulty", unit, slaveId: 3, register: 0, scale: 0.1, intervalMs: 100 },
    { id: "stuck", unit, slaveId: 3, register: 10, scale: 0.1, intervalMs: 100, staleAfterMs: 300 },
  ];
}

const timing = { timeoutMs: 150, retries: 0, backoff: { initialMs: 200, maxMs: 800 } };

function acquisitionSuite(
  name: string,
  setup: () => Promise<{ sim: RtuSlaveSim | TcpSlaveSim; bus: BusConfigInput; close: () => Promise<void> }>,
) {
  describe(`acquisition over ${name}`, () => {
    let sim: RtuSlaveSim | TcpSlaveSim;
    let acq: Acquisition;
    let logs: CapturedLog;
    let close: () => Promise<void>;
    const readings: AcquiredReading[] = [];
    const of = (id: string) => readings.filter((r) => r.probeId === id);

    beforeAll(async () => {
      const s = await setup();
      sim = s.sim;
      close = s.close;
      sim.setFault(2, { silent: true });
      logs = captureLog();
      const buses = busesSchema.parse([
        s.bus,
        // A second bus whose adapter is missing: retried in the background, never blocks the first.
        {
          id: "missing",
          type: "modbus-rtu",
          port: "/dev/serial/by-id/does-not-exist",
          ...timing,
          probes: [{ id: "orphan", unit: "fridge-9", slaveId: 1, register: 0, intervalMs: 100 }],
        },
      ]);
      acq = createAcquisition(buses, { log: logs.log });
      await acq.start((r) => readings.push(r));
    });

    afterAll(async () => {
      await acq?.stop();
      await close?.();
    });

    it("decodes every type × word order from the simulator", async () => {
      await waitFor(
        () => variants.every((v) => of(v.id).some((r) => r.quality === "ok")),
        "a reading of every variant",
      );
      for (const v of variants) {
        const r = of(v.id).find((x) => x.quality === "ok")!;
        expect({ id: v.id, tempC: r.tempC }).toEqual({ id: v.id, tempC: v.expected });
        expect(r.unitId).toBe("fridge-1");
        expect(Number.isInteger(r.observedAt)).toBe(true);
      }
      await waitFor(() => of("fc4").some((r) => r.quality === "ok"), "FC4 reading");
      expect(of("fc4").find((r) => r.quality === "ok")!.tempC).toBe(4.62);
    });

    it("applies the calibration offset and flags an overdue certificate", async () => {
      // The first good reading (on a loaded machine a poll can time out now and then).
      await waitFor(() => of("calibrated").some((r) => r.quality === "ok"), "calibrated reading");
      expect(of("calibrated").find((r) => r.quality === "ok")).toMatchObject({ quality: "ok", tempC: 4.6 });
      expect(acq.health().find((h) => h.probeId === "calibrated")).toMatchObject({
        calibrationOverdue: true,
        calibrationDueAt: Date.parse("2020-01-31T23:59:59.999Z"),
      });
      expect(
        logs.lines.some((l) => l.msg === "probe calibration overdue" && l.probeId === "calibrated"),
      ).toBe(true);
    });

    it("gives a dead slave comm_error with backoff while healthy slaves keep being polled", async () => {
      await waitFor(() => of("dead").length >= 12, "a dozen readings of the dead slave");
      expect(of("dead").every((r) => r.quality === "comm_error" && r.tempC === null)).toBe(true);
      // Backoff: fewer requests went to slave 2 than comm_error readings were produced …
      expect(sim.slave(2).requests).toBeLessThan(of("dead").length);
      // … and slave 1 got more requests than the dead one.
      expect(sim.slave(1).requests).toBeGreaterThan(sim.slave(2).requests);
      const h = acq.health().find((x) => x.probeId === "dead")!;
      expect(h).toMatchObject({ lastOkAt: null, calibrationDueAt: null, calibrationOverdue: false });
      expect(h.consecutiveFailures).toBeGreaterThanOrEqual(12);
      // Charged only with its own failed requests, not with the cycles it was not asked (backoff).
      expect(h.faults.comm_error).toBeGreaterThanOrEqual(1);
      expect(h.faults.comm_error).toBeLessThanOrEqual(sim.slave(2).requests);
      expect(h.faults.comm_error).toBeLessThan(h.consecutiveFailures);
      expect(
        logs.lines.some((l) => l.msg === "probe read failed" && l.probeId === "dead" && l.level === 40),
      ).toBe(true);
      expect(acq.health().find((x) => x.probeId === "v-int16-ABCD")).toMatchObject({
        consecutiveFailures: 0,
      });
    });

    it("keeps polling a bus whose port does not open, as comm_error", async () => {
      await waitFor(() => of("orphan").length >= 3, "readings of the missing bus");
      expect(of("orphan").every((r) => r.quality === "comm_error")).toBe(true);
      expect(logs.count("bus open failed")).toBeGreaterThanOrEqual(1);
    });

    it("maps the sensor-fault sentinel to sensor_fault, and recovers", async () => {
      sim.setFault(3, { sensorFault: true });
      const mark = readings.length;
      await waitFor(
        () => readings.slice(mark).some((r) => r.probeId === "faulty" && r.quality === "sensor_fault"),
        "sensor_fault",
      );
      sim.setFault(3, {});
      const mark2 = readings.length;
      await waitFor(
        () => readings.slice(mark2).some((r) => r.probeId === "faulty" && r.quality === "ok"),
        "recovery",
      );
      expect(readings.slice(mark2).find((r) => r.probeId === "faulty" && r.quality === "ok")!.tempC).toBe(
        3.3,
      );
      expect(acq.health().find((x) => x.probeId === "faulty")!.faults.sensor_fault).toBeGreaterThan(0);
    });

    it("turns corrupted replies into comm_error and keeps going", async () => {
      sim.setFault(1, { corrupt: true });
      const mark = readings.length;
      await waitFor(
        () =>
          readings.slice(mark).filter((r) => r.probeId === "v-int16-ABCD" && r.quality === "comm_error")
            .length >= 2,
        "comm_error from corrupted frames",
      );
      // Other slaves on the same bus are unaffected.
      expect(readings.slice(mark).some((r) => r.probeId === "faulty" && r.quality === "ok")).toBe(true);
      sim.setFault(1, {});
      const mark2 = readings.length;
      await waitFor(
        () => readings.slice(mark2).some((r) => r.probeId === "v-float32-DCBA" && r.quality === "ok"),
        "recovery after corrupted frames",
      );
    });

    it("flags a value stuck longer than staleAfterMs as stale", async () => {
      await waitFor(() => of("stuck").some((r) => r.quality === "stale"), "a stale reading");
      const first = of("stuck")[0]!;
      expect(first.quality).toBe("ok");
      expect(of("stuck").find((r) => r.quality === "stale")!.tempC).toBe(7.1);
    });

    it("writes a coil on the simulator and rejects writes that cannot happen", async () => {
      await acq.writeCoil("bus-1", 3, 5, true);
      expect(sim.slave(3).coils[5]).toBe(1);
      await acq.writeCoil("bus-1", 3, 5, false);
      expect(sim.slave(3).coils[5]).toBe(0);
      await expect(acq.writeCoil("bus-1", 2, 5, true)).rejects.toMatchObject({ code: "CT_RELAY_WRITE" });
      await expect(acq.writeCoil("bus-1", 3, 5000, true)).rejects.toMatchObject({ code: "CT_RELAY_WRITE" });
      await expect(acq.writeCoil("nope", 1, 0, true)).rejects.toMatchObject({ code: "CT_RELAY_WRITE" });
    });
  });
}

acquisitionSuite("Modbus TCP", async () => {
  const sim = await startTcpSlave({ port: 0, scenario });
  return {
    sim,
    bus: {
      id: "bus-1",
      type: "modbus-tcp",
      host: "127.0.0.1",
      port: sim.port,
      ...timing,
      probes: probes("fridge-1"),
    },
    close: () => sim.close(),
  };
});

const socat = await requireService("socat");
describe.skipIf(!socat.available)(`RTU ${socat.reason}`, () => {
  acquisitionSuite("Modbus RTU on a PTY", async () => {
    const pty: PtyPair = await openPtyPair();
    const sim = await startRtuSlave({ path: pty.b, baudRate: 38_400, scenario });
    return {
      sim,
      bus: {
        id: "bus-1",
        type: "modbus-rtu",
        port: pty.a,
        baudRate: 38_400,
        ...timing,
        probes: probes("fridge-1"),
      },
      close: async () => {
        await sim.close();
        await pty.close();
      },
    };
  });
});
