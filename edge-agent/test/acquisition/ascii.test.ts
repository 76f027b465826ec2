/**
 * Serial ASCII probes over a real PTY pair: the simulator prints `T1=+04.62C` lines, the agent
 * parses them with the configured regex; garbage and line noise are counted and logged, and
 * never stop the bus.
 */
import { type AsciiProbeSim, startAsciiProbe } from "@coldtrace/simulators";
import { openPtyPair, type PtyPair, requireService } from "@coldtrace/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AcquiredReading, type Acquisition, createAcquisition } from "../../src/acquisition/index.ts";
import { busesSchema } from "../../src/config/buses.ts";
import { type CapturedLog, captureLog, waitFor } from "./helpers.ts";

const socat = await requireService("socat");
describe.skipIf(!socat.available)(`serial ASCII probes ${socat.reason}`, () => {
  let pty: PtyPair;
  let probe: AsciiProbeSim;
  let acq: Acquisition;
  let logs: CapturedLog;
  const readings: AcquiredReading[] = [];
  const since = (mark: number, id: string) => readings.slice(mark).filter((r) => r.probeId === id);

  beforeAll(async () => {
    pty = await openPtyPair();
    probe = await startAsciiProbe({
      path: pty.b,
      intervalMs: 0, // lines only when the test ticks
      scenario: {
        ascii: {
          channels: [
            { name: "T1", baseC: 4.62, noiseC: 0 },
            { name: "T2", baseC: -18.5, noiseC: 0 },
          ],
        },
      },
    });
    logs = captureLog();
    const buses = busesSchema.parse([
      {
        id: "line-1",
        type: "serial-ascii",
        port: pty.a,
        lineTimeoutMs: 60_000,
        probes: [
          { id: "box-t1", unit: "box-7", channel: "T1", intervalMs: 100, calibration: { offsetC: 0.1 } },
          { id: "box-t2", unit: "box-7", channel: "T2", intervalMs: 100, range: { minC: -40, maxC: -10 } },
        ],
      },
    ]);
    acq = createAcquisition(buses, { log: logs.log });
    await acq.start((r) => readings.push(r));
  });

  afterAll(async () => {
    await acq?.stop();
    await probe?.close();
    await pty?.close();
  });

  it("reports comm_error until the probe has printed a line", async () => {
    await waitFor(() => since(0, "box-t1").length > 0, "a first reading");
    expect(since(0, "box-t1")[0]).toMatchObject({ quality: "comm_error", tempC: null });
  });

  it("parses lines into readings per channel", async () => {
    const mark = readings.length;
    await probe.tick();
    await waitFor(() => since(mark, "box-t1").some((r) => r.quality === "ok"), "T1 reading");
    await waitFor(() => since(mark, "box-t2").some((r) => r.quality === "ok"), "T2 reading");
    expect(since(mark, "box-t1").find((r) => r.quality === "ok")).toMatchObject({
      tempC: 4.72,
      unitId: "box-7",
    });
    expect(since(mark, "box-t2").find((r) => r.quality === "ok")!.tempC).toBe(-18.5);
  });

  it("counts and logs garbage lines without crashing, and keeps parsing", async () => {
    const before = logs.count("serial line rejected");
    probe.setFault({ garbage: true });
    await probe.tick();
    await probe.writeRaw(Uint8Array.from({ length: 600 }, (_, i) => 0x80 + ((i * 37) % 128))); // noise, no newline
    await probe.writeRaw("\r\nT9=+01.00C\r\n"); // end of the noise; a channel nobody configured
    const rejected = () => logs.lines.filter((l) => l.msg === "serial line rejected").slice(before);
    await waitFor(
      () =>
        ["no match", "line too long", "unknown channel"].every((r) => rejected().some((l) => l.reason === r)),
      () => `every kind of garbage logged (${JSON.stringify(rejected().map((l) => [l.reason, l.line]))})`,
    );
    expect(rejected().every((l) => l.level === 40 && l.busId === "line-1")).toBe(true);
    expect(rejected().length).toBeGreaterThanOrEqual(4); // 2 garbled lines, the noise, T9
    probe.setFault({});
    probe.setTemp("T1", 6.0);
    const mark = readings.length;
    await probe.tick();
    await waitFor(() => since(mark, "box-t1").some((r) => r.tempC === 6.1), "T1 after garbage");
  });

  it("maps ERR lines to sensor_fault and values outside the range to out_of_range", async () => {
    probe.setFault({ sensorFault: true });
    let mark = readings.length;
    await probe.tick();
    await waitFor(() => since(mark, "box-t1").some((r) => r.quality === "sensor_fault"), "sensor_fault");
    probe.setFault({});
    probe.setTemp("T2", -5);
    mark = readings.length;
    await probe.tick();
    await waitFor(() => since(mark, "box-t2").some((r) => r.quality === "out_of_range"), "out_of_range");
    expect(since(mark, "box-t2").find((r) => r.quality === "out_of_range")!.tempC).toBe(-5);
    const h = acq.health().find((x) => x.probeId === "box-t2")!;
    expect(h.faults.out_of_range).toBeGreaterThan(0);
  });
});
