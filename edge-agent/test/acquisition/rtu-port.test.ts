/**
 * Tripwire for the custom-port contract of modbus-serial (pinned exactly in package.json):
 * the agent's RTU line port behind `new ModbusRTU(port)`, on an in-memory serial line whose
 * far end is the simulators' Modbus slave. No external services: this must fail on a
 * modbus-serial upgrade that changes what it asks of a port, before any PTY test runs.
 */
import { EventEmitter } from "node:events";
import { createSlave, handlePdu, withCrc } from "@coldtrace/simulators";
import modbusSerial from "modbus-serial";
import { describe, expect, it } from "vitest";
import { RtuLinePort, replyLength, type SerialLine } from "../../src/drivers/rtu-port.ts";

const ModbusRTU = modbusSerial.default;

/** A serial line that answers like one slave, in as many chunks as asked, after `delayMs`. */
class MemoryLine extends EventEmitter implements SerialLine {
  isOpen = false;
  chunks = 1;
  /** Bytes to put on the line before the next reply (noise, or a late reply). */
  before: Buffer = Buffer.alloc(0);
  corruptNext = false;
  written: Buffer[] = [];
  readonly slave = createSlave({
    id: 7,
    size: 20,
    channels: [
      {
        register: 19,
        function: 3,
        type: "int16",
        wordOrder: "ABCD",
        scale: 0.1,
        offset: 0,
        sentinel: 0x8000,
        baseC: 4.6,
        noiseC: 0,
      },
    ],
  });

  open(cb: (err: Error | null) => void) {
    this.isOpen = true;
    queueMicrotask(() => cb(null));
  }
  close(cb: (err: Error | null) => void) {
    this.isOpen = false;
    queueMicrotask(() => {
      cb(null);
      this.emit("close");
    });
  }
  write(data: Buffer) {
    this.written.push(Buffer.from(data));
    const pdu = handlePdu(this.slave, data.subarray(1, data.length - 2), undefined);
    if (!pdu || data[0] !== this.slave.id) return true;
    const frame = Buffer.from(withCrc(Uint8Array.from([data[0]!, ...pdu])));
    if (this.corruptNext) {
      frame[frame.length - 1]! ^= 0xff;
      this.corruptNext = false;
    }
    const bytes = Buffer.concat([this.before, frame]);
    this.before = Buffer.alloc(0);
    const size = Math.ceil(bytes.length / this.chunks);
    setImmediate(() => {
      for (let i = 0; i < bytes.length; i += size) this.emit("data", bytes.subarray(i, i + size));
    });
    return true;
  }
}

async function client(line: MemoryLine) {
  const c = new ModbusRTU(new RtuLinePort({ line }));
  await new Promise<void>((resolve, reject) => c.open((err: unknown) => (err ? reject(err) : resolve())));
  c.setID(7);
  c.setTimeout(200);
  return c;
}

describe("modbus-serial custom port contract (tripwire)", () => {
  it("reads registers through the port, whole frames assembled from split chunks", async () => {
    const line = new MemoryLine();
    line.chunks = 4;
    const c = await client(line);
    expect(c.isOpen).toBe(true);
    const r = await c.readHoldingRegisters(19, 1);
    expect(r.data).toEqual([46]);
    expect(line.written).toHaveLength(1);
    // Exactly the request the Modbus spec describes: id, FC3, address 19, quantity 1, CRC.
    expect([...line.written[0]!.subarray(0, 6)]).toEqual([7, 3, 0, 19, 0, 1]);
  });

  it("skips noise before a reply, and forgets stale bytes at the next request", async () => {
    const line = new MemoryLine();
    const c = await client(line);
    line.before = Buffer.from([0x00, 0xff]);
    expect((await c.readHoldingRegisters(19, 1)).data).toEqual([46]);
    // Half of a stale frame that looks like a reply from slave 7 sits in the port's buffer …
    line.emit("data", Buffer.from([7, 3, 2, 0x7f]));
    // … and must not be glued to the next reply.
    expect((await c.readHoldingRegisters(19, 1)).data).toEqual([46]);
  });

  it("reports a bad CRC and an exception reply the way the driver expects", async () => {
    const line = new MemoryLine();
    const c = await client(line);
    line.corruptNext = true;
    await expect(c.readHoldingRegisters(19, 1)).rejects.toThrow(/CRC/);
    // Register 20 is past the slave's table: exception 2, "illegal data address".
    await expect(c.readHoldingRegisters(19, 2)).rejects.toMatchObject({ modbusCode: 2 });
    await expect(c.readHoldingRegisters(19, 1)).resolves.toMatchObject({ data: [46] });
  });

  it("times out when nothing answers, and relays the line's close", async () => {
    const line = new MemoryLine();
    const c = await client(line);
    c.setID(8);
    await expect(c.readHoldingRegisters(0, 1)).rejects.toThrow(/Timed out/);
    // ModbusRTU is an EventEmitter at runtime; its typings leave that out.
    const emitter = c as unknown as EventEmitter;
    const closed = new Promise<void>((resolve) => emitter.once("close", () => resolve()));
    line.close(() => {});
    await closed;
    expect(c.isOpen).toBe(false);
  });

  it("knows the reply length of every request the agent sends", () => {
    const req = (fc: number, qty: number) => Uint8Array.of(1, fc, 0, 0, qty >> 8, qty & 0xff);
    expect(replyLength(req(3, 125))).toBe(255);
    expect(replyLength(req(4, 2))).toBe(9);
    expect(replyLength(req(1, 9))).toBe(7);
    expect(replyLength(req(5, 0xff00))).toBe(8);
    expect(replyLength(req(43, 0))).toBeUndefined();
  });
});
