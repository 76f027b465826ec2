/** Every ProbeDriver passes the same contract against a real peer. */
import { type AsciiProbeSim, startAsciiProbe, startRtuSlave, startTcpSlave } from "@coldtrace/simulators";
import { openPtyPair, requireService } from "@coldtrace/testkit";
import { describe } from "vitest";
import { manualClock } from "../../src/clock.ts";
import { busesSchema, type SerialAsciiBusConfig } from "../../src/config/buses.ts";
import { createModbusDriver } from "../../src/drivers/modbus.ts";
import { createSerialAsciiDriver } from "../../src/drivers/serial-ascii.ts";
import { probeDriverContract } from "./driver.contract.ts";
import { captureLog } from "./helpers.ts";

const slaves = [
  {
    id: 1,
    channels: [
      { register: 0, scale: 0.1, baseC: 4.5, noiseC: 0 },
      { register: 1, scale: 0.1, baseC: 4.5, noiseC: 0 },
      { register: 10, type: "float32" as const, wordOrder: "CDAB" as const, scale: 1, baseC: 4.5, noiseC: 0 },
    ],
  },
];
const modbusProbes = [
  { id: "a", unit: "u", slaveId: 1, register: 0, scale: 0.1 },
  { id: "b", unit: "u", slaveId: 1, register: 1, scale: 0.1 },
  { id: "c", unit: "u", slaveId: 1, register: 10, type: "float32", wordOrder: "CDAB" },
];
const timing = { timeoutMs: 150, retries: 0 };

probeDriverContract("modbus-tcp", async () => {
  const sim = await startTcpSlave({ port: 0, slaves });
  const [bus] = busesSchema.parse([
    { id: "tcp", type: "modbus-tcp", host: "127.0.0.1", port: sim.port, ...timing, probes: modbusProbes },
  ]);
  if (bus?.type !== "modbus-tcp") throw new Error("unreachable");
  return {
    driver: createModbusDriver(bus, captureLog().log),
    probes: bus.probes,
    okTempC: 4.5,
    healthy: async () => sim.setFault(1, {}),
    silence: async () => sim.setFault(1, { silent: true }),
    close: () => sim.close(),
  };
});

const socat = await requireService("socat");
describe.skipIf(!socat.available)(`serial drivers ${socat.reason}`, () => {
  probeDriverContract("modbus-rtu", async () => {
    const pty = await openPtyPair();
    const sim = await startRtuSlave({ path: pty.b, baudRate: 19_200, slaves });
    const [bus] = busesSchema.parse([
      { id: "rtu", type: "modbus-rtu", port: pty.a, baudRate: 19_200, ...timing, probes: modbusProbes },
    ]);
    if (bus?.type !== "modbus-rtu") throw new Error("unreachable");
    return {
      driver: createModbusDriver(bus, captureLog().log),
      probes: bus.probes,
      okTempC: 4.5,
      healthy: async () => sim.setFault(1, {}),
      silence: async () => sim.setFault(1, { silent: true }),
      close: async () => {
        await sim.close();
        await pty.close();
      },
    };
  });

  probeDriverContract("serial-ascii", async () => {
    const pty = await openPtyPair();
    const sim: AsciiProbeSim = await startAsciiProbe({
      path: pty.b,
      intervalMs: 0,
      scenario: {
        ascii: {
          channels: [
            { name: "T1", baseC: 4.5, noiseC: 0 },
            { name: "T2", baseC: 4.5, noiseC: 0 },
          ],
        },
      },
    });
    const clock = manualClock(Date.now());
    const [bus] = busesSchema.parse([
      {
        id: "ascii",
        type: "serial-ascii",
        port: pty.a,
        lineTimeoutMs: 5000,
        probes: [
          { id: "t1", unit: "u", channel: "T1" },
          { id: "t2", unit: "u", channel: "T2" },
        ],
      },
    ]);
    const ascii = bus as SerialAsciiBusConfig;
    const driver = createSerialAsciiDriver(ascii, captureLog().log, clock);
    return {
      driver,
      probes: ascii.probes,
      okTempC: 4.5,
      healthy: async () => {
        const before = driver.validLines;
        await sim.tick();
        for (let i = 0; i < 500 && driver.validLines < before + 2; i++)
          await new Promise((r) => setTimeout(r, 5));
      },
      // A silent line: nothing printed for longer than lineTimeoutMs.
      silence: async () => clock.advance(5001),
      close: async () => {
        await sim.close();
        await pty.close();
      },
    };
  });
});
