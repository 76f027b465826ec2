/**
 * The agent's own Modbus RTU line for modbus-serial, passed through its custom-port
 * constructor `new ModbusRTU(port)` (ModbusRTU.d.ts: `constructor(port?: any)`; the library's
 * own ports and its TestPort have the same shape). modbus-serial asks of a port: `open(cb)`,
 * `close(cb)`, `write(frame)`, an `isOpen` getter, and `data` (one whole reply frame per
 * event), `error` and `close` events. It checks the slave id, function code, length and CRC
 * of each frame itself.
 *
 *   serialport bytes ─► buffer ─► a frame for the request in flight? ─► emit("data", frame)
 *   write(request)   ─► buffer cleared (the line is idle when the master speaks) ─► serialport
 *
 * Why not the library's RTUBufferedPort: its buffer is private, and a slow slave's late reply
 * left in it can be taken for the answer to the next request (same id, function and length,
 * other registers). Clearing the buffer at every request is ours to do here, not a reach into
 * the library. Frames are delimited by the length the request implies, as the buffered port
 * does: USB RS-485 adapters split one frame into several chunks, so a chunk is not a frame.
 *
 * modbus-serial keeps its own bookkeeping properties on the port object (`_transactionIdRead`
 * and `_transactionIdWrite`); a port must not use those names. The exact modbus-serial version
 * is pinned and `test/acquisition/rtu-port.test.ts` is the tripwire for this contract.
 */
import { EventEmitter } from "node:events";
import { SerialPort } from "serialport";

/** The part of serialport's SerialPort this port uses (tests pass an in-memory line). */
export interface SerialLine {
  readonly isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  close(cb: (err: Error | null) => void): void;
  write(data: Buffer): unknown;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  on(event: "close", listener: () => void): unknown;
}

export interface RtuLineOptions {
  path: string;
  baudRate: number;
  parity: "none" | "even" | "odd";
  dataBits: 7 | 8;
  stopBits: 1 | 2;
}

/** Longest RTU frame (Modbus over Serial Line v1.02 §2.5.1.1: 256 bytes). */
const MAX_FRAME = 256;
/** Exception reply: id, fc|0x80, code, CRC (Modbus Application Protocol v1.1b3 §7). */
const EXCEPTION_LENGTH = 5;

/** Reply length the request implies, or undefined for function codes the agent never sends. */
export function replyLength(request: Uint8Array): number | undefined {
  const fc = request[1];
  const qty = ((request[4] ?? 0) << 8) | (request[5] ?? 0);
  switch (fc) {
    case 1:
    case 2:
      return 3 + Math.ceil(qty / 8) + 2; // §6.1/6.2: id fc count bytes… crc
    case 3:
    case 4:
      return 3 + 2 * qty + 2; // §6.3/6.4: id fc count words… crc
    case 5:
    case 6:
    case 15:
    case 16:
      return 8; // §6.5/6.6/6.11/6.12: echo of address and value/quantity
    default:
      return undefined;
  }
}

export class RtuLinePort extends EventEmitter {
  private readonly line: SerialLine;
  private buffer: Buffer = Buffer.alloc(0);
  private expected: { id: number; fc: number; length: number | undefined } | undefined;

  constructor(options: RtuLineOptions | { line: SerialLine }) {
    super();
    this.line =
      "line" in options
        ? options.line
        : new SerialPort({
            path: options.path,
            baudRate: options.baudRate,
            parity: options.parity,
            dataBits: options.dataBits,
            stopBits: options.stopBits,
            autoOpen: false,
          });
    this.line.on("data", (chunk) => this.onData(chunk));
    this.line.on("error", (err) => this.emit("error", err));
    this.line.on("close", () => this.emit("close"));
  }

  get isOpen(): boolean {
    return this.line.isOpen;
  }

  open(callback: (err: Error | null) => void): void {
    this.line.open(callback);
  }

  close(callback?: (err: Error | null) => void): void {
    this.buffer = Buffer.alloc(0);
    this.expected = undefined;
    this.line.close((err) => callback?.(err));
  }

  /** Sends one request. Whatever is still buffered is a late reply or noise: forgotten. */
  write(request: Buffer): void {
    this.buffer = Buffer.alloc(0);
    this.expected = { id: request[0] ?? 0, fc: request[1] ?? 0, length: replyLength(request) };
    this.line.write(request);
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (this.buffer.length > MAX_FRAME) this.buffer = this.buffer.subarray(-MAX_FRAME);
    const want = this.expected;
    if (!want || want.length === undefined) return;
    // The reply starts at the first byte with the slave id and function code (a bus can carry
    // a byte of noise before it); an exception reply is shorter than a normal one.
    for (let i = 0; i + EXCEPTION_LENGTH <= this.buffer.length; i++) {
      if (this.buffer[i] !== want.id) continue;
      const fc = this.buffer[i + 1];
      const length = fc === want.fc ? want.length : fc === (want.fc | 0x80) ? EXCEPTION_LENGTH : undefined;
      if (length === undefined) continue;
      if (i + length > this.buffer.length) return; // the rest is still on the wire
      const frame = this.buffer.subarray(i, i + length);
      this.buffer = this.buffer.subarray(i + length);
      this.expected = undefined;
      this.emit("data", frame);
      return;
    }
  }
}
