/**
 * The simulators are spec-compliant Modbus peers: checked with modbus-serial as an independent
 * master over a real PTY pair (buffered RTU) and over TCP, plus raw frames for what a library
 * master never sends (bad CRC, other ids, broadcast, unknown function codes).
 */
import { openPtyPair, type PtyPair, requireService } from "@coldtrace/testkit";
import modbusSerial from "modbus-serial";
import { SerialPort } from "serialport";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { crc16modbus, crcOk, startRtuSlave, startTcpSlave, withCrc } from "../../src/index.ts";
import type { RtuSlaveSim } from "../../src/probes/rtu.ts";
import type { TcpSlaveSim } from "../../src/probes/tcp.ts";

// A CommonJS package: Node's default import is module.exports, whose `.default` is itself.
const ModbusRTU = modbusSerial.default;
type ModbusRTU = InstanceType<typeof ModbusRTU>;

const slaves = [
  {
    id: 1,
    size: 200,
    channels: [
      { register: 0, type: "int16" as const, scale: 0.1, baseC: 4.6, noiseC: 0 },
      {
        register: 10,
        function: 4 as const,
        type: "float32" as const,
        wordOrder: "CDAB" as const,
        scale: 1,
        baseC: -18.25,
        noiseC: 0,
      },
    ],
  },
  { id: 2, size: 50 },
];

/** The master-side checks, run against both transports. */
function conformance(name: string, connect: () => Promise<ModbusRTU>, sim: () => RtuSlaveSim | TcpSlaveSim) {
  describe(`${name}: modbus-serial master`, () => {
    let client: ModbusRTU;
    beforeAll(async () => {
      client = await connect();
      client.setTimeout(500);
    });
    afterAll(async () => {
      await new Promise<void>((r) => client.close(() => r()));
    });

    it("FC3 reads holding registers with a channel value", async () => {
      client.setID(1);
      const r = await client.readHoldingRegisters(0, 2);
      expect(r.data).toEqual([46, 0]);
    });

    it("FC4 reads input registers (float32 CDAB)", async () => {
      client.setID(1);
      const r = await client.readInputRegisters(10, 2);
      const b = Buffer.alloc(4);
      b.writeUInt16BE(r.data[1]!, 0);
      b.writeUInt16BE(r.data[0]!, 2);
      expect(b.readFloatBE(0)).toBe(-18.25);
    });

    it("FC6 then FC3, FC16 then FC3", async () => {
      client.setID(2);
      await client.writeRegister(5, 0xbeef);
      await client.writeRegisters(6, [1, 2, 3]);
      expect((await client.readHoldingRegisters(5, 4)).data).toEqual([0xbeef, 1, 2, 3]);
      expect(sim().slave(2).holding[5]).toBe(0xbeef);
    });

    it("FC5, FC15 and FC1", async () => {
      client.setID(2);
      await client.writeCoil(3, true);
      await client.writeCoils(8, [true, false, true, true, false, false, false, false, true]);
      const r = await client.readCoils(0, 20);
      expect(r.data.slice(0, 17)).toEqual([
        false,
        false,
        false,
        true,
        false,
        false,
        false,
        false,
        true,
        false,
        true,
        true,
        false,
        false,
        false,
        false,
        true,
      ]);
      await client.writeCoil(3, false);
      expect(sim().slave(2).coils[3]).toBe(0);
    });

    it("FC2 reads discrete inputs", async () => {
      client.setID(2);
      sim().slave(2).discreteInputs[1] = 1;
      expect((await client.readDiscreteInputs(0, 3)).data.slice(0, 3)).toEqual([false, true, false]);
    });

    it("exception 02 for an address outside the map", async () => {
      client.setID(2);
      await expect(client.readHoldingRegisters(49, 2)).rejects.toMatchObject({ modbusCode: 2 });
      await expect(client.writeRegister(50, 1)).rejects.toMatchObject({ modbusCode: 2 });
    });

    it("exception 03 for a quantity above 125", async () => {
      client.setID(1);
      await expect(client.readHoldingRegisters(0, 126)).rejects.toMatchObject({ modbusCode: 3 });
    });

    // modbus-serial's buffered RTU port cannot delimit FC 22 replies (it knows no length for
    // them), so over RTU the same check is done with raw frames below.
    if (name !== "RTU")
      it("exception 01 for an unsupported function code (FC 22)", async () => {
        client.setID(1);
        await expect(
          new Promise((resolve, reject) =>
            client.writeFC22(1, 0, 0xffff, 0, (err: unknown, data: unknown) =>
              err ? reject(err) : resolve(data),
            ),
          ),
        ).rejects.toMatchObject({ modbusCode: 1 });
      });

    it("a silent slave times out; the other keeps answering", async () => {
      sim().setFault(2, { silent: true });
      client.setID(2);
      await expect(client.readHoldingRegisters(0, 1)).rejects.toMatchObject({
        name: "TransactionTimedOutError",
      });
      sim().setFault(2, {});
      client.setID(1);
      expect((await client.readHoldingRegisters(0, 1)).data).toEqual([46]);
    });

    it("sensor fault returns the sentinel", async () => {
      sim().setFault(1, { sensorFault: true });
      client.setID(1);
      expect((await client.readHoldingRegisters(0, 1)).data).toEqual([0x8000]);
      sim().setFault(1, {});
    });

    it("a corrupted reply is rejected by the master", async () => {
      sim().setFault(1, { corrupt: true });
      client.setID(1);
      await expect(client.readHoldingRegisters(0, 1)).rejects.toBeTruthy();
      sim().setFault(1, {});
      // The link recovers for the next request.
      await new Promise((r) => setTimeout(r, 600));
      expect((await client.readHoldingRegisters(0, 1)).data).toEqual([46]);
    });
  });
}

describe("CRC-16/MODBUS", () => {
  it("matches the spec example", () => {
    // Modbus over Serial Line v1.02 §6.2.2 / common reference frame 01 03 00 00 00 01 → CRC 0x0A84 (84 0A on the wire)
    const frame = withCrc(Uint8Array.of(1, 3, 0, 0, 0, 1));
    expect(Array.from(frame.slice(6))).toEqual([0x84, 0x0a]);
    expect(crc16modbus(Uint8Array.of(1, 3, 0, 0, 0, 1))).toBe(0x0a84);
    expect(crcOk(frame)).toBe(true);
    frame[2] = 1;
    expect(crcOk(frame)).toBe(false);
  });
});

let tcp: TcpSlaveSim;
conformance(
  "TCP",
  async () => {
    tcp = await startTcpSlave({ port: 0, slaves });
    const c = new ModbusRTU();
    await c.connectTCP("127.0.0.1", { port: tcp.port });
    return c;
  },
  () => tcp,
);
afterAll(async () => tcp?.close());

const socat = await requireService("socat");
describe.skipIf(!socat.available)(`RTU over a PTY ${socat.reason}`, () => {
  let pty: PtyPair;
  let rtu: RtuSlaveSim;
  beforeAll(async () => {
    pty = await openPtyPair();
    rtu = await startRtuSlave({ path: pty.b, baudRate: 38_400, slaves });
  });
  afterAll(async () => {
    await rtu?.close();
    await pty?.close();
  });

  conformance(
    "RTU",
    async () => {
      const c = new ModbusRTU();
      await c.connectRTUBuffered(pty.a, { baudRate: 38_400 });
      return c;
    },
    () => rtu,
  );

  describe("raw frames", () => {
    let port: SerialPort;
    let received = Buffer.alloc(0);
    beforeAll(async () => {
      port = new SerialPort({ path: pty.a, baudRate: 38_400, autoOpen: false });
      await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
      port.on("data", (d: Buffer) => {
        received = Buffer.concat([received, d]);
      });
    });
    afterAll(async () => {
      await new Promise<void>((r) => port.close(() => r()));
    });
    const send = (b: Uint8Array) =>
      new Promise<void>((r) => port.write(Buffer.from(b), () => port.drain(() => r())));
    const reply = async (n: number) => {
      for (let i = 0; i < 200 && received.length < n; i++) await new Promise((r) => setTimeout(r, 5));
      const out = received.subarray(0, n);
      received = received.subarray(n);
      return out;
    };

    it("drops a bad-CRC request, ignores other ids, then answers a good one", async () => {
      const before = { ...rtu.stats };
      const bad = withCrc(Uint8Array.of(1, 3, 0, 0, 0, 1));
      bad[7]! ^= 0xff;
      await send(bad);
      await send(withCrc(Uint8Array.of(9, 3, 0, 0, 0, 1))); // no slave 9 on this bus
      await send(withCrc(Uint8Array.of(1, 3, 0, 0, 0, 1)));
      const r = await reply(7);
      expect(crcOk(r)).toBe(true);
      expect(Array.from(r.subarray(0, 5))).toEqual([1, 3, 2, 0, 46]);
      expect(rtu.stats.crcErrors).toBeGreaterThan(before.crcErrors);
      expect(rtu.stats.ignored).toBe(before.ignored + 1);
      expect(received.length).toBe(0);
    });

    it("executes a broadcast write without replying", async () => {
      await send(withCrc(Uint8Array.of(0, 6, 0, 7, 0x12, 0x34)));
      await send(withCrc(Uint8Array.of(2, 3, 0, 7, 0, 1)));
      const r = await reply(7);
      expect(Array.from(r.subarray(0, 5))).toEqual([2, 3, 2, 0x12, 0x34]);
      expect(rtu.slave(1).holding[7]).toBe(0x1234);
    });

    it("answers unknown function codes with exception 01 (delimited by CRC)", async () => {
      await send(withCrc(Uint8Array.of(1, 0x41, 9, 9, 9)));
      const r = await reply(5);
      expect(Array.from(r.subarray(0, 3))).toEqual([1, 0xc1, 1]);
      expect(crcOk(r)).toBe(true);
      await send(withCrc(Uint8Array.of(1, 22, 0, 0, 0xff, 0xff, 0, 0))); // FC 22 mask write
      expect(Array.from((await reply(5)).subarray(0, 3))).toEqual([1, 0x96, 1]);
    });

    it("answers FC16 with a wrong byte count with exception 03", async () => {
      await send(withCrc(Uint8Array.of(1, 16, 0, 0, 0, 2, 2, 0, 1)));
      const r = await reply(5);
      expect(Array.from(r.subarray(0, 3))).toEqual([1, 0x90, 3]);
    });
  });
});
