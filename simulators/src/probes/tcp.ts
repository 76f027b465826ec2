/**
 * A Modbus TCP slave (or a TCP-to-RTU gateway with several unit ids) on node:net.
 * MBAP framing, Modbus Messaging on TCP/IP Implementation Guide v1.0b §3.1.3:
 *   transaction id (2) · protocol id (2, = 0) · length (2, = unit id + PDU) · unit id (1) · PDU
 * A frame with a protocol id other than 0 or an impossible length closes the connection, as
 * the guide recommends for a stream that can no longer be delimited. A unit id with no slave
 * behind it gets exception 0x0B "gateway target device failed to respond" (§7, MODBUS spec).
 */
import net from "node:net";
import { createSimBus, type SimBus, type SimBusOptions } from "./bus.ts";
import { effectiveFaults, handlePdu } from "./modbus-slave.ts";

export interface TcpSlaveOptions extends SimBusOptions {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
}

export interface TcpSlaveSim extends SimBus {
  readonly port: number;
  readonly stats: { frames: number; badFrames: number; connections: number };
  close(): Promise<void>;
}

const GATEWAY_TARGET_FAILED = 0x0b;

export async function startTcpSlave(options: TcpSlaveOptions = {}): Promise<TcpSlaveSim> {
  const bus = createSimBus(options);
  const stats = { frames: 0, badFrames: 0, connections: 0 };
  const sockets = new Set<net.Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const server = net.createServer((socket) => {
    stats.connections++;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let buffer = Buffer.alloc(0);
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 7) {
        const tid = buffer.readUInt16BE(0);
        const protocol = buffer.readUInt16BE(2);
        const length = buffer.readUInt16BE(4);
        if (protocol !== 0 || length < 2 || length > 254) {
          stats.badFrames++;
          socket.destroy();
          return;
        }
        if (buffer.length < 6 + length) return;
        const unit = buffer[6]!;
        const pdu = new Uint8Array(buffer.subarray(7, 6 + length));
        buffer = buffer.subarray(6 + length);
        stats.frames++;
        respond(socket, tid, unit, pdu);
      }
    });
  });

  function send(socket: net.Socket, tid: number, unit: number, pdu: Uint8Array, delayMs: number) {
    const frame = Buffer.alloc(7 + pdu.length);
    frame.writeUInt16BE(tid, 0);
    frame.writeUInt16BE(0, 2);
    frame.writeUInt16BE(pdu.length + 1, 4);
    frame[6] = unit;
    frame.set(pdu, 7);
    const t = setTimeout(() => {
      timers.delete(t);
      if (!socket.destroyed) socket.write(frame);
    }, delayMs);
    timers.add(t);
  }

  function respond(socket: net.Socket, tid: number, unit: number, pdu: Uint8Array) {
    const only = bus.slaves.size === 1 ? [...bus.slaves.values()][0] : undefined;
    // Unit id 0xFF (or 0) addresses the TCP device itself (Implementation Guide §4.4.2).
    const slave = bus.slaves.get(unit) ?? (unit === 0xff || unit === 0 ? only : undefined);
    if (!slave) {
      send(socket, tid, unit, Uint8Array.of((pdu[0] ?? 0) | 0x80, GATEWAY_TARGET_FAILED), bus.turnaroundMs);
      return;
    }
    slave.requests++;
    const faults = effectiveFaults(slave, bus.player, pdu);
    if (faults.silent) return;
    const response = handlePdu(slave, pdu, bus.player);
    if (!response) return;
    if (faults.corrupt) {
      // A garbled PDU: the byte count no longer matches what follows.
      const garbled = response.slice();
      if (garbled.length > 1) garbled[1] = (garbled[1]! + 7) & 0xff;
      garbled[0] = garbled[0]! ^ 0x20;
      send(socket, tid, unit, garbled, bus.turnaroundMs + faults.turnaroundMs);
      return;
    }
    send(socket, tid, unit, response, bus.turnaroundMs + faults.turnaroundMs);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  return {
    ...bus,
    port: address.port,
    stats,
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
