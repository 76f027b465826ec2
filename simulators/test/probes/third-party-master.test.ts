/**
 * The simulators checked by a second, independent Modbus master: jsmodbus (Cloud-Automation's
 * node-modbus), not modbus-serial, which the edge agent itself uses. Over Modbus TCP and over
 * Modbus RTU on a real PTY pair (jsmodbus's RTU client on a `serialport` SerialPort) it reads
 * the scenario's temperatures back and decodes them here, independently of the simulator's own
 * encoder, and checks writes, exception responses and an id nobody answers.
 *
 * Modbus Application Protocol Specification v1.1b3: FC 1–6, 15, 16 (§6), exceptions (§7);
 * Modbus over Serial Line v1.02 §2.1: a slave only answers requests addressed to it;
 * Modbus Messaging on TCP/IP Implementation Guide v1.0b: a gateway answers an unreachable unit
 * with exception 0x0B.
 */
import net from "node:net";
import { fileURLToPath } from "node:url";
import { openPtyPair, type PtyPair, requireService } from "@coldtrace/testkit";
import { ModbusRTUClient, ModbusTCPClient, UserRequestError } from "jsmodbus";
import { SerialPort } from "serialport";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  loadScenario,
  type RtuSlaveSim,
  type ScenarioInput,
  type SimClock,
  startRtuSlave,
  startTcpSlave,
  type TcpSlaveSim,
} from "../../src/index.ts";

type Master = ModbusTCPClient | ModbusRTUClient;

/** A channel as the scenario configures it (the test's own view; decoded independently below). */
interface Channel {
  register: number;
  function: 3 | 4;
  type: "int16" | "uint16" | "int32" | "uint32" | "float32";
  wordOrder: "ABCD" | "CDAB" | "BADC" | "DCBA";
  scale: number;
  offset: number;
  baseC: number;
}

const channels: Channel[] = [
  { register: 0, function: 3, type: "int16", wordOrder: "ABCD", scale: 0.1, offset: 0, baseC: 4.6 },
  { register: 1, function: 3, type: "int16", wordOrder: "ABCD", scale: 0.01, offset: 0, baseC: -21.37 },
  { register: 2, function: 3, type: "int32", wordOrder: "CDAB", scale: 0.001, offset: 0, baseC: 7.125 },
  { register: 10, function: 4, type: "float32", wordOrder: "CDAB", scale: 1, offset: 0, baseC: -18.25 },
  { register: 12, function: 4, type: "uint16", wordOrder: "ABCD", scale: 0.1, offset: -50, baseC: 3.3 },
  { register: 14, function: 4, type: "float32", wordOrder: "DCBA", scale: 1, offset: 0, baseC: 5.2 },
];
const DOOR_RISE_C = 3.5;

const scenario: ScenarioInput = {
  name: "third-party-master",
  slaves: [
    { id: 1, size: 100, channels: channels.map((c) => ({ ...c, noiseC: 0 })) },
    { id: 2, size: 50 },
  ],
  // Fully open after one minute (scenario.ts), so at 6 min every channel reads baseC + riseC.
  events: [{ kind: "door-open", at: "5m", duration: "90s", riseC: DOOR_RISE_C, slaveId: 1 }],
};
const UNSERVED_ID = 9;

/** Register words (big-endian bytes as on the wire) → °C, per the channel's type, order, scale, offset. */
function decode(words: Buffer, ch: Pick<Channel, "type" | "wordOrder" | "scale" | "offset">): number {
  const b = [...words];
  const twoWords = ch.type === "int32" || ch.type === "uint32" || ch.type === "float32";
  // Back to ABCD (most significant byte first).
  const abcd = !twoWords
    ? ch.wordOrder === "BADC" || ch.wordOrder === "DCBA"
      ? [b[1]!, b[0]!]
      : [b[0]!, b[1]!]
    : {
        ABCD: [b[0]!, b[1]!, b[2]!, b[3]!],
        CDAB: [b[2]!, b[3]!, b[0]!, b[1]!],
        BADC: [b[1]!, b[0]!, b[3]!, b[2]!],
        DCBA: [b[3]!, b[2]!, b[1]!, b[0]!],
      }[ch.wordOrder];
  const buf = Buffer.from(abcd);
  const raw = {
    int16: () => buf.readInt16BE(0),
    uint16: () => buf.readUInt16BE(0),
    int32: () => buf.readInt32BE(0),
    uint32: () => buf.readUInt32BE(0),
    float32: () => buf.readFloatBE(0),
  }[ch.type]();
  return raw * ch.scale + ch.offset;
}
/** jsmodbus reports bits as 0/1 (and pads to whole bytes): the first `n` as booleans. */
const bits = (values: ArrayLike<unknown>, n: number) => Array.from(values).slice(0, n).map(Boolean);
const wordsOf = (ch: Pick<Channel, "type">) => (ch.type === "int16" || ch.type === "uint16" ? 1 : 2);

/** What jsmodbus reports for a rejected request: its error kind and, for an exception, the code. */
async function rejection(request: Promise<unknown>): Promise<{ err: string; code?: number }> {
  try {
    await request;
  } catch (e) {
    if (!(e instanceof UserRequestError)) throw e;
    const body: unknown = e.response?.body;
    const code = body && typeof body === "object" && "code" in body ? Number(body.code) : undefined;
    return code === undefined ? { err: e.err } : { err: e.err, code };
  }
  throw new Error("the request was answered; a rejection was expected");
}

async function readChannel(master: Master, ch: Channel): Promise<number> {
  const r =
    ch.function === 3
      ? await master.readHoldingRegisters(ch.register, wordsOf(ch))
      : await master.readInputRegisters(ch.register, wordsOf(ch));
  return decode(r.response.body.valuesAsBuffer, ch);
}

interface Harness {
  sim(): RtuSlaveSim | TcpSlaveSim;
  clock: { t: number } & SimClock;
  master(id: number): Master;
}

const manualClock = (): Harness["clock"] => {
  const c = { t: 0, now: () => c.t };
  return c;
};

/** The checks both transports must pass. */
function thirdPartyChecks(h: Harness) {
  it("FC3 reads holding registers that decode to the scenario's temperatures", async () => {
    const m = h.master(1);
    for (const ch of channels.filter((c) => c.function === 3))
      expect(await readChannel(m, ch), `register ${ch.register}`).toBeCloseTo(ch.baseC, 5);
    // The same channels in one block read.
    const block = (await m.readHoldingRegisters(0, 4)).response.body.valuesAsBuffer;
    expect(decode(block.subarray(0, 2), channels[0]!)).toBeCloseTo(4.6, 5);
    expect(decode(block.subarray(2, 4), channels[1]!)).toBeCloseTo(-21.37, 5);
    expect(decode(block.subarray(4, 8), channels[2]!)).toBeCloseTo(7.125, 5);
  });

  it("FC4 reads input registers that decode to the scenario's temperatures", async () => {
    const m = h.master(1);
    for (const ch of channels.filter((c) => c.function === 4))
      expect(await readChannel(m, ch), `register ${ch.register}`).toBeCloseTo(ch.baseC, 5);
  });

  it("follows the scenario's door opening on the simulator clock", async () => {
    const m = h.master(1);
    h.clock.t = 6 * 60_000;
    try {
      for (const ch of channels)
        expect(await readChannel(m, ch), `register ${ch.register}`).toBeCloseTo(ch.baseC + DOOR_RISE_C, 5);
    } finally {
      h.clock.t = 0;
    }
  });

  it("FC1 and FC2 read coils and discrete inputs", async () => {
    const m = h.master(2);
    const slave = h.sim().slave(2);
    slave.coils.fill(0);
    slave.coils[2] = 1;
    slave.coils[9] = 1;
    slave.discreteInputs.fill(0);
    slave.discreteInputs[0] = 1;
    slave.discreteInputs[7] = 1;
    slave.discreteInputs[8] = 1;
    const coils = bits((await m.readCoils(0, 10)).response.body.valuesAsArray, 10);
    expect(coils).toEqual([false, false, true, false, false, false, false, false, false, true]);
    const inputs = bits((await m.readDiscreteInputs(0, 9)).response.body.valuesAsArray, 9);
    expect(inputs).toEqual([true, false, false, false, false, false, false, true, true]);
  });

  it("FC6 and FC16 write registers; FC3 reads them back", async () => {
    const m = h.master(2);
    await m.writeSingleRegister(5, 0xbeef);
    await m.writeMultipleRegisters(6, [1, 0x8000, 0xffff]);
    expect([...(await m.readHoldingRegisters(5, 4)).response.body.valuesAsArray]).toEqual([
      0xbeef, 1, 0x8000, 0xffff,
    ]);
    expect([...h.sim().slave(2).holding.subarray(5, 9)]).toEqual([0xbeef, 1, 0x8000, 0xffff]);
  });

  it("FC5 and FC15 write coils; FC1 reads them back", async () => {
    const m = h.master(2);
    h.sim().slave(2).coils.fill(0);
    await m.writeSingleCoil(20, true);
    const pattern = [true, false, true, true, false, false, false, false, true, true, false];
    await m.writeMultipleCoils(30, pattern);
    expect(bits((await m.readCoils(20, 1)).response.body.valuesAsArray, 1)).toEqual([true]);
    expect(bits((await m.readCoils(30, pattern.length)).response.body.valuesAsArray, pattern.length)).toEqual(
      pattern,
    );
    await m.writeSingleCoil(20, false);
    expect(bits((await m.readCoils(20, 1)).response.body.valuesAsArray, 1)).toEqual([false]);
    expect(h.sim().slave(2).coils[20]).toBe(0);
  });

  it("exception 02 (illegal data address) beyond the slave's map", async () => {
    const m = h.master(2); // size 50: addresses 0–49
    const illegalAddress = { err: "ModbusException", code: 2 };
    expect(await rejection(m.readHoldingRegisters(49, 2))).toEqual(illegalAddress);
    expect(await rejection(m.readInputRegisters(50, 1))).toEqual(illegalAddress);
    expect(await rejection(m.readCoils(45, 8))).toEqual(illegalAddress);
    expect(await rejection(m.writeSingleRegister(50, 1))).toEqual(illegalAddress);
    expect(await rejection(m.writeMultipleRegisters(48, [1, 2, 3]))).toEqual(illegalAddress);
    expect(await rejection(m.writeSingleCoil(50, true))).toEqual(illegalAddress);
    // The link stays in step after exceptions.
    expect([...(await m.readHoldingRegisters(5, 1)).response.body.valuesAsArray]).toHaveLength(1);
  });

  it("exception 03 (illegal data value) for a quantity above 125 registers", async () => {
    const m = h.master(1);
    const illegalValue = { err: "ModbusException", code: 3 };
    expect(await rejection(m.readHoldingRegisters(0, 126))).toEqual(illegalValue);
    expect(await rejection(m.readInputRegisters(0, 126))).toEqual(illegalValue);
    expect(await readChannel(m, channels[0]!)).toBeCloseTo(4.6, 5);
  });
}

describe("jsmodbus master over Modbus TCP", () => {
  let tcp: TcpSlaveSim;
  let socket: net.Socket;
  const clock = manualClock();
  const masters = new Map<number, ModbusTCPClient>();
  beforeAll(async () => {
    tcp = await startTcpSlave({ port: 0, scenario, clock });
    socket = new net.Socket();
    // jsmodbus clients listen for the socket's "connect"; several unit ids share one connection.
    for (const id of [1, 2, UNSERVED_ID]) masters.set(id, new ModbusTCPClient(socket, id, 1000));
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.connect(tcp.port, "127.0.0.1", () => resolve());
    });
  });
  afterAll(async () => {
    socket?.destroy();
    await tcp?.close();
  });

  thirdPartyChecks({ sim: () => tcp, clock, master: (id) => masters.get(id)! });

  it("a unit id with no slave behind it gets exception 0x0B (gateway target failed to respond)", async () => {
    expect(await rejection(masters.get(UNSERVED_ID)!.readHoldingRegisters(0, 1))).toEqual({
      err: "ModbusException",
      code: 0x0b,
    });
  });
});

describe("jsmodbus master on the shipped steady-fridge scenario (TCP)", () => {
  it("reads every configured channel within baseC ± noiseC", async () => {
    const file = fileURLToPath(new URL("../../scenarios/steady-fridge.yaml", import.meta.url));
    const loaded = await loadScenario(file);
    // Scenario time 0: before the door opening at 5 min.
    const tcp = await startTcpSlave({ port: 0, scenario: loaded, clock: { now: () => 0 } });
    const socket = new net.Socket();
    const masters = new Map(loaded.slaves.map((s) => [s.id, new ModbusTCPClient(socket, s.id, 1000)]));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.connect(tcp.port, "127.0.0.1", () => resolve());
      });
      let checked = 0;
      for (const slave of loaded.slaves)
        for (const ch of slave.channels) {
          const value = await readChannel(masters.get(slave.id)!, ch);
          expect(Math.abs(value - ch.baseC), `slave ${slave.id} register ${ch.register}`).toBeLessThanOrEqual(
            ch.noiseC + ch.scale / 2 + 1e-9,
          );
          checked++;
        }
      expect(checked).toBe(3);
    } finally {
      socket.destroy();
      await tcp.close();
    }
  });
});

const socat = await requireService("socat");
describe.skipIf(!socat.available)(`jsmodbus master over Modbus RTU on a PTY pair ${socat.reason}`, () => {
  const BAUD = 19_200;
  let pty: PtyPair;
  let rtu: RtuSlaveSim;
  let port: SerialPort;
  const clock = manualClock();
  const masters = new Map<number, ModbusRTUClient>();
  let lineBytes = 0;
  beforeAll(async () => {
    pty = await openPtyPair();
    rtu = await startRtuSlave({ path: pty.b, baudRate: BAUD, scenario, clock });
    port = new SerialPort({ path: pty.a, baudRate: BAUD, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
    port.on("data", (d: Buffer) => {
      lineBytes += d.length;
    });
    masters.set(1, new ModbusRTUClient(port, 1, 1000));
    masters.set(2, new ModbusRTUClient(port, 2, 1000));
    // Short: it is expected to time out.
    masters.set(UNSERVED_ID, new ModbusRTUClient(port, UNSERVED_ID, 300));
  });
  afterAll(async () => {
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
    await rtu?.close();
    await pty?.close();
  });

  thirdPartyChecks({ sim: () => rtu, clock, master: (id) => masters.get(id)! });

  it("a slave id the bus does not have gets no answer: the master times out", async () => {
    const before = { bytes: lineBytes, ignored: rtu.stats.ignored };
    expect(await rejection(masters.get(UNSERVED_ID)!.readHoldingRegisters(0, 1))).toEqual({ err: "Timeout" });
    // Nothing at all came back on the line (not even a reply under another id), and the
    // simulator saw the frame and ignored it.
    expect(lineBytes).toBe(before.bytes);
    expect(rtu.stats.ignored).toBe(before.ignored + 1);
    // The line is still usable.
    expect(await readChannel(masters.get(1)!, channels[0]!)).toBeCloseTo(4.6, 5);
  });
});
