/**
 * A Modbus RTU slave bus on a serial port — in tests and rehearsals one end of a socat PTY
 * pair. Several slave ids answer on the same bus, as on a real RS-485 line.
 *
 *   PTY bytes ─► frame parser (length from function code, then CRC) ─► slave by id ─► handlePdu
 *                     │ bad CRC: drop one byte, resync                    │
 *                     │ unknown id: ignore; id 0: broadcast, no reply     ▼
 *   PTY bytes ◄── wait modelled wire time + turnaround ◄───────── response + CRC
 *
 * A PTY has no line speed and no inter-character silence, so frames are delimited by the
 * lengths their function code implies plus the CRC (Modbus over Serial Line v1.02 §2.5.1.1
 * delimits by 3.5 character times of silence, which a PTY cannot carry). To behave like a real
 * bus the simulator waits the time the request and the reply would take on the wire at its
 * baud rate before writing: 11 bits per character in RTU (§2.5.1: 1 start, 8 data, parity or a
 * second stop bit, 1 stop) plus t3.5 and the configured turnaround; and it keeps t3.5 of
 * silence after its reply before the next request counts as started. So one poll can never
 * beat  (request + reply chars) × 11 / baud + 2 × t3.5 + turnaround,  the line's own limit.
 */
import { SerialPort } from "serialport";
import { createSimBus, type SimBus, type SimBusOptions } from "./bus.ts";
import { crcOk, withCrc } from "./crc.ts";
import { effectiveFaults, handlePdu } from "./modbus-slave.ts";

export interface RtuSlaveOptions extends SimBusOptions {
  path: string;
  baudRate?: number;
  parity?: "none" | "even" | "odd";
  stopBits?: 1 | 2;
}

export interface RtuSimStats {
  /** Frames with a valid CRC, for any id. */
  frames: number;
  /** Bytes dropped while resynchronising after a bad CRC or garbage. */
  droppedBytes: number;
  crcErrors: number;
  /** Frames for ids this bus does not have. */
  ignored: number;
}

export interface RtuSlaveSim extends SimBus {
  readonly stats: RtuSimStats;
  /** Time one character takes on the wire, ms. */
  readonly charMs: number;
  close(): Promise<void>;
}

/** Request length implied by the function code, or undefined when it cannot be known yet. */
function requestLength(buf: Uint8Array): number | "unknown" | undefined {
  const fc = buf[1];
  if (fc === undefined) return undefined;
  if (fc >= 1 && fc <= 6) return 8;
  if (fc === 15 || fc === 16) {
    const count = buf[6];
    return count === undefined ? undefined : 9 + count;
  }
  return "unknown";
}

/** Modbus over Serial Line §2.5.1.1: above 19200 baud t3.5 is fixed at 1.75 ms. */
export function rtuTimings(baudRate: number): { charMs: number; t35Ms: number } {
  const charMs = (11 * 1000) / baudRate;
  return { charMs, t35Ms: baudRate > 19_200 ? 1.75 : 3.5 * charMs };
}

export async function startRtuSlave(options: RtuSlaveOptions): Promise<RtuSlaveSim> {
  const bus = createSimBus(options);
  const baudRate = options.baudRate ?? 9600;
  const { charMs, t35Ms } = rtuTimings(baudRate);
  const port = new SerialPort({
    path: options.path,
    baudRate,
    parity: options.parity ?? "none",
    stopBits: options.stopBits ?? 1,
    autoOpen: false,
  });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  port.on("error", () => {
    /* a closed PTY peer; nothing to do for a simulator */
  });

  const stats: RtuSimStats = { frames: 0, droppedBytes: 0, crcErrors: 0, ignored: 0 };
  let buffer = new Uint8Array(0);
  let busy = false;
  let closed = false;
  let flushTimer: ReturnType<typeof setTimeout> | undefined;
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const drop = (n: number) => {
    stats.droppedBytes += n;
    buffer = buffer.slice(n);
  };

  // When the modelled wire is free again: end of the last reply plus t3.5 of silence. A request
  // that arrives earlier (a PTY delivers instantly) waits for it, as it would on a real line.
  let wireFreeAt = 0;
  /** A request nobody answers still occupies the line while it is sent. */
  const occupy = (reqLen: number) => {
    wireFreeAt = Math.max(performance.now(), wireFreeAt) + reqLen * charMs + t35Ms;
  };
  const reply = (frame: Uint8Array, reqLen: number, turnaroundMs: number) => {
    busy = true;
    const now = performance.now();
    const requestStart = Math.max(now, wireFreeAt);
    const replyEnd =
      requestStart + reqLen * charMs + t35Ms + bus.turnaroundMs + turnaroundMs + frame.length * charMs;
    wireFreeAt = replyEnd + t35Ms;
    const wireMs = replyEnd - now;
    const t = setTimeout(() => {
      timers.delete(t);
      if (closed) return;
      // No drain(): tcdrain on a PTY waits for the peer's next read, which adds latency that
      // the wire model already accounts for.
      port.write(Buffer.from(frame), () => {
        busy = false;
        pump();
      });
    }, wireMs);
    timers.add(t);
  };

  /**
   * What starts at byte `i`: a complete valid frame (its length), a frame still arriving
   * ("partial"), or nothing valid ("invalid").
   */
  function frameAt(i: number): number | "partial" | "invalid" {
    const view = buffer.subarray(i);
    const len = requestLength(view);
    if (len === undefined) return "partial";
    if (len === "unknown") {
      // Unknown function code: the only delimiter left is a matching CRC.
      for (let n = 4; n <= Math.min(view.length, 256); n++) if (crcOk(view, n)) return n;
      return view.length < 256 ? "partial" : "invalid";
    }
    if (len > 256) return "invalid";
    if (view.length < len) return "partial";
    return crcOk(view, len) ? len : "invalid";
  }

  function takeFrame(): Uint8Array | undefined {
    if (buffer.length < 4) return undefined;
    const head = frameAt(0);
    if (typeof head === "number") {
      const frame = buffer.slice(0, head);
      buffer = buffer.slice(head);
      return frame;
    }
    if (head === "invalid" && requestLength(buffer) !== "unknown") stats.crcErrors++;
    // Resynchronise: the first later offset where a complete valid frame starts.
    for (let i = 1; i + 4 <= buffer.length; i++) {
      const at = frameAt(i);
      if (typeof at === "number") {
        drop(i);
        const frame = buffer.slice(0, at);
        buffer = buffer.slice(at);
        return frame;
      }
    }
    if (head === "invalid") drop(1);
    // Otherwise wait for more bytes; the silence timer discards what never completes.
    return undefined;
  }

  function pump(): void {
    while (!busy && !closed) {
      const frame = takeFrame();
      if (!frame) return;
      stats.frames++;
      const id = frame[0]!;
      const pdu = frame.subarray(1, frame.length - 2);
      if (id === 0) {
        for (const s of bus.slaves.values()) handlePdu(s, pdu, bus.player, true);
        occupy(frame.length);
        continue;
      }
      const slave = bus.slaves.get(id);
      if (!slave) {
        stats.ignored++;
        occupy(frame.length);
        continue;
      }
      slave.requests++;
      const faults = effectiveFaults(slave, bus.player, pdu);
      if (faults.silent) {
        occupy(frame.length);
        continue;
      }
      const response = handlePdu(slave, pdu, bus.player);
      if (!response) {
        occupy(frame.length);
        continue;
      }
      const body = new Uint8Array(response.length + 1);
      body[0] = id;
      body.set(response, 1);
      const out = withCrc(body);
      if (faults.corrupt) out[out.length - 1]! ^= 0x5a;
      reply(out, frame.length, faults.turnaroundMs);
    }
  }

  port.on("data", (chunk: Buffer) => {
    const next = new Uint8Array(buffer.length + chunk.length);
    next.set(buffer);
    next.set(chunk, buffer.length);
    buffer = next;
    // Leftover bytes that never complete a frame are line noise: forget them after a pause.
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = setTimeout(
      () => {
        if (!busy && buffer.length > 0) drop(buffer.length);
      },
      Math.max(100, t35Ms * 4),
    );
    pump();
  });

  return {
    ...bus,
    stats,
    charMs,
    async close() {
      closed = true;
      if (flushTimer) clearTimeout(flushTimer);
      for (const t of timers) clearTimeout(t);
      if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    },
  };
}

/**
 * The most polls per second an RTU line can carry for one request/reply pair:
 * 1 / ((request + reply chars) × 11 bits / baud + 2 × t3.5 + turnaround).
 */
export function rtuPollLimit(
  baudRate: number,
  requestChars: number,
  replyChars: number,
  turnaroundMs = 0,
): number {
  const { charMs, t35Ms } = rtuTimings(baudRate);
  return 1000 / ((requestChars + replyChars) * charMs + 2 * t35Ms + turnaroundMs);
}
