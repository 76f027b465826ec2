/**
 * Scenario events reach the wire: a not-answering slave, a sensor-fault sentinel, a power cut
 * and corrupted frames, played on a hand-driven scenario clock, seen by modbus-serial as master.
 */
import modbusSerial from "modbus-serial";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTcpSlave, type TcpSlaveSim } from "../../src/index.ts";

const ModbusRTU = modbusSerial.default;

describe("scenario-driven faults over Modbus TCP", () => {
  let now = 0;
  let sim: TcpSlaveSim;
  let client: InstanceType<typeof ModbusRTU>;

  beforeAll(async () => {
    sim = await startTcpSlave({
      port: 0,
      clock: { now: () => now },
      scenario: {
        speed: 60,
        slaves: [
          { id: 1, channels: [{ register: 0, scale: 0.1, baseC: 5, noiseC: 0 }] },
          {
            id: 2,
            channels: [
              {
                register: 0,
                type: "float32",
                wordOrder: "DCBA",
                scale: 1,
                sentinel: 0x7fc00000,
                baseC: 5,
                noiseC: 0,
              },
            ],
          },
        ],
        events: [
          { kind: "not-answering", at: "10m", duration: "10m", slaveId: 2 },
          { kind: "sensor-fault", at: "30m", duration: "10m", slaveId: 1, channel: 0 },
          { kind: "sensor-fault", at: "30m", duration: "10m", slaveId: 2 },
          { kind: "corrupt-frames", at: "50m", duration: "10m", slaveId: 1 },
          { kind: "power-cut", at: "70m", duration: "10m" },
          { kind: "compressor-failure", at: "90m", rampCPerHour: 6, maxC: 30 },
        ],
      },
    });
    client = new ModbusRTU();
    await client.connectTCP("127.0.0.1", { port: sim.port });
    client.setTimeout(200);
  });
  afterAll(async () => {
    await new Promise<void>((r) => client.close(() => r()));
    await sim.close();
  });

  const read = async (id: number, count = 1) => {
    client.setID(id);
    return (await client.readHoldingRegisters(0, count)).data;
  };
  const at = (minutes: number) => {
    now = (minutes * 60_000) / 60; // speed 60: one scenario minute per wall second
  };

  it("plays the events in scenario time", async () => {
    at(5);
    expect(await read(1)).toEqual([50]);
    at(15);
    await expect(read(2, 2)).rejects.toMatchObject({ name: "TransactionTimedOutError" });
    expect(await read(1)).toEqual([50]);
    at(35);
    expect(await read(1)).toEqual([0x8000]);
    expect(await read(2, 2)).toEqual([0x0000, 0xc07f]); // 0x7FC00000 (NaN) in DCBA order
    at(55);
    await expect(read(1)).rejects.toBeTruthy();
    at(75);
    await expect(read(1)).rejects.toMatchObject({ name: "TransactionTimedOutError" });
    at(90 + 60);
    expect(await read(1)).toEqual([110]); // 5 °C + 6 °C/h × 1 h
  });
});
