/**
 * A slow RTU slave whose replies come after the agent's timeout must never have a late reply
 * taken for the answer to a later request (same slave, same length, other registers).
 */
import { startRtuSlave } from "@coldtrace/simulators";
import { openPtyPair, requireService } from "@coldtrace/testkit";
import { describe, expect, it } from "vitest";
import { type AcquiredReading, createAcquisition } from "../../src/acquisition/index.ts";
import { busesSchema } from "../../src/config/buses.ts";
import { captureLog, waitFor } from "./helpers.ts";

const socat = await requireService("socat");
describe.skipIf(!socat.available)(`late RTU replies ${socat.reason}`, () => {
  it("are never decoded as another block's values", async () => {
    const pty = await openPtyPair();
    const sim = await startRtuSlave({
      path: pty.b,
      baudRate: 38_400,
      slaves: [
        {
          id: 1,
          channels: [
            { register: 0, scale: 0.1, baseC: 1, noiseC: 0 },
            { register: 50, scale: 0.1, baseC: 9, noiseC: 0 },
          ],
        },
      ],
    });
    sim.setFault(1, { turnaroundMs: 250 });
    const readings: AcquiredReading[] = [];
    const acq = createAcquisition(
      busesSchema.parse([
        {
          id: "rs485",
          type: "modbus-rtu",
          port: pty.a,
          baudRate: 38_400,
          timeoutMs: 150,
          retries: 1,
          backoff: { initialMs: 100, maxMs: 200 },
          probes: [
            { id: "low", unit: "u1", slaveId: 1, register: 0, scale: 0.1, intervalMs: 100 },
            { id: "high", unit: "u1", slaveId: 1, register: 50, scale: 0.1, intervalMs: 100 },
          ],
        },
      ]),
      { log: captureLog().log },
    );
    try {
      await acq.start((r) => readings.push(r));
      await waitFor(() => sim.slave(1).requests >= 8, "several requests to the slow slave");
      sim.setFault(1, {});
      await waitFor(
        () => readings.filter((r) => r.quality === "ok").length >= 6,
        "readings after the slave speeds up",
      );
      await acq.stop();
      const wrong = readings.filter((r) => r.quality === "ok" && r.tempC !== (r.probeId === "low" ? 1 : 9));
      expect(wrong).toEqual([]);
      expect(readings.some((r) => r.quality === "comm_error")).toBe(true);
    } finally {
      await acq.stop();
      await sim.close();
      await pty.close();
    }
  });
});
