/** A Modbus TCP slave that goes away and comes back: comm_error meanwhile, then readings resume. */
import { startTcpSlave } from "@coldtrace/simulators";
import { describe, expect, it } from "vitest";
import { type AcquiredReading, createAcquisition } from "../../src/acquisition/index.ts";
import { busesSchema } from "../../src/config/buses.ts";
import { captureLog, waitFor } from "./helpers.ts";

const slaves = [{ id: 1, channels: [{ register: 0, scale: 0.1, baseC: 4.4, noiseC: 0 }] }];

describe("Modbus TCP reconnect", () => {
  it("reopens the connection with backoff after the slave restarts", async () => {
    let sim = await startTcpSlave({ port: 0, slaves });
    const port = sim.port;
    const logs = captureLog();
    const readings: AcquiredReading[] = [];
    const acq = createAcquisition(
      busesSchema.parse([
        {
          id: "tcp-1",
          type: "modbus-tcp",
          host: "127.0.0.1",
          port,
          timeoutMs: 200,
          retries: 0,
          backoff: { initialMs: 100, maxMs: 400 },
          probes: [{ id: "p1", unit: "u1", slaveId: 1, register: 0, scale: 0.1, intervalMs: 100 }],
        },
      ]),
      { log: logs.log },
    );
    try {
      await acq.start((r) => readings.push(r));
      await waitFor(() => readings.some((r) => r.quality === "ok"), "first reading");
      await sim.close();
      let mark = readings.length;
      await waitFor(
        () => readings.slice(mark).filter((r) => r.quality === "comm_error").length >= 3,
        "comm_error",
      );
      sim = await startTcpSlave({ port, slaves });
      mark = readings.length;
      await waitFor(() => readings.slice(mark).some((r) => r.quality === "ok"), "readings after the restart");
      expect(readings.slice(mark).find((r) => r.quality === "ok")!.tempC).toBe(4.4);
      expect(logs.count("bus reopened")).toBeGreaterThanOrEqual(1);
    } finally {
      await acq.stop();
      await sim.close();
    }
  });
});
