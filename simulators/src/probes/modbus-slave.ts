/**
 * A Modbus slave's application layer, independent of transport: request PDU in, response PDU
 * out (or nothing). The RTU (PTY) and TCP simulators wrap it in their own framing.
 * Modbus Application Protocol Specification v1.1b3:
 *   FC 1/2 read coils/discrete inputs (§6.1, §6.2: quantity 1–2000)
 *   FC 3/4 read holding/input registers (§6.3, §6.4: quantity 1–125)
 *   FC 5 write single coil (§6.5: value 0xFF00 or 0x0000)
 *   FC 6 write single register (§6.6)
 *   FC 15 write multiple coils (§6.11: quantity 1–1968, byte count N = ceil(q/8))
 *   FC 16 write multiple registers (§6.12: quantity 1–123, byte count 2q)
 *   exceptions (§7): 01 illegal function, 02 illegal data address, 03 illegal data value
 * Temperature channels are computed from the scenario at the moment they are read.
 */
import type { ModbusChannel, ScenarioPlayer, SlaveSpec } from "./scenario.ts";
import { encodeValue, registerCount } from "./values.ts";

export const EXCEPTION = { illegalFunction: 1, illegalDataAddress: 2, illegalDataValue: 3 } as const;

export interface SlaveFaults {
  /** Do not answer at all. */
  silent?: boolean;
  /** Answer with a corrupted frame (bad CRC on RTU, garbled PDU on TCP). */
  corrupt?: boolean;
  /** Every channel returns its fault sentinel. */
  sensorFault?: boolean;
  /** Extra delay before replying. */
  turnaroundMs?: number;
  /** Corrupt only the next N replies (one burst of noise), counting down. */
  corruptNext?: number;
  /** Do not answer the next N requests, counting down. */
  silentNext?: number;
  /**
   * Limit `silent`, `corrupt`, `corruptNext` and `silentNext` to requests whose register range
   * covers this register (of this function code, when given): a fault on one probe's registers.
   */
  target?: { function?: number; register: number };
}

export interface SimulatedSlave {
  readonly id: number;
  readonly coils: Uint8Array;
  readonly discreteInputs: Uint8Array;
  readonly holding: Uint16Array;
  readonly input: Uint16Array;
  faults: SlaveFaults;
  /** Requests addressed to this slave (not counting broadcasts). */
  requests: number;
  /** Pins a channel to a fixed temperature (null: back to the scenario). */
  fixed: Map<number, number | null>;
  spec: SlaveSpec;
}

export function createSlave(spec: SlaveSpec): SimulatedSlave {
  return {
    id: spec.id,
    coils: new Uint8Array(spec.size),
    discreteInputs: new Uint8Array(spec.size),
    holding: new Uint16Array(spec.size),
    input: new Uint16Array(spec.size),
    faults: {},
    requests: 0,
    fixed: new Map(),
    spec,
  };
}

const exception = (fc: number, code: number) => Uint8Array.of(fc | 0x80, code);
const u16 = (b: Uint8Array, i: number) => ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);

function refreshChannels(slave: SimulatedSlave, player: ScenarioPlayer | undefined, table: 3 | 4): void {
  for (const ch of slave.spec.channels) {
    if (ch.function !== table) continue;
    const regs = channelRegisters(slave, ch, player);
    const target = table === 3 ? slave.holding : slave.input;
    regs.forEach((r, i) => {
      if (ch.register + i < target.length) target[ch.register + i] = r;
    });
  }
}

function channelRegisters(
  slave: SimulatedSlave,
  ch: ModbusChannel,
  player: ScenarioPlayer | undefined,
): number[] {
  const sensorFault =
    slave.faults.sensorFault || player?.active("sensor-fault", slave.id, ch.register) !== undefined;
  const words = registerCount(ch.type);
  if (sensorFault) {
    // The sentinel is a raw bit pattern in canonical order; lay it out in the channel's word order.
    return words === 1
      ? encodeValue(ch.sentinel & 0xffff, "uint16", ch.wordOrder)
      : encodeValue(ch.sentinel >>> 0, "uint32", ch.wordOrder);
  }
  const fixed = slave.fixed.get(ch.register);
  const tempC = fixed ?? player?.tempC(ch, slave.id, ch.register) ?? ch.baseC;
  const raw = (tempC - ch.offset) / ch.scale;
  return encodeValue(ch.type === "float32" ? raw : Math.round(raw), ch.type, ch.wordOrder);
}

/**
 * Handles one request PDU for `slave`. Returns the response PDU, or null when no reply is due
 * (a broadcast). `broadcast` requests only execute writes (Modbus over Serial Line §2.1).
 */
export function handlePdu(
  slave: SimulatedSlave,
  pdu: Uint8Array,
  player: ScenarioPlayer | undefined,
  broadcast = false,
): Uint8Array | null {
  const fc = pdu[0] ?? 0;
  const reply = (r: Uint8Array) => (broadcast ? null : r);
  const addr = u16(pdu, 1);
  const qty = u16(pdu, 3);
  switch (fc) {
    case 1:
    case 2: {
      if (broadcast) return null;
      if (pdu.length < 5 || qty < 1 || qty > 2000) return exception(fc, EXCEPTION.illegalDataValue);
      const table = fc === 1 ? slave.coils : slave.discreteInputs;
      if (addr + qty > table.length) return exception(fc, EXCEPTION.illegalDataAddress);
      const n = Math.ceil(qty / 8);
      const out = new Uint8Array(2 + n);
      out[0] = fc;
      out[1] = n;
      for (let i = 0; i < qty; i++) if (table[addr + i]) out[2 + (i >> 3)]! |= 1 << (i & 7);
      return out;
    }
    case 3:
    case 4: {
      if (broadcast) return null;
      if (pdu.length < 5 || qty < 1 || qty > 125) return exception(fc, EXCEPTION.illegalDataValue);
      const table = fc === 3 ? slave.holding : slave.input;
      if (addr + qty > table.length) return exception(fc, EXCEPTION.illegalDataAddress);
      refreshChannels(slave, player, fc);
      const out = new Uint8Array(2 + qty * 2);
      out[0] = fc;
      out[1] = qty * 2;
      for (let i = 0; i < qty; i++) {
        out[2 + i * 2] = table[addr + i]! >> 8;
        out[3 + i * 2] = table[addr + i]! & 0xff;
      }
      return out;
    }
    case 5: {
      const value = u16(pdu, 3);
      if (pdu.length < 5 || (value !== 0xff00 && value !== 0x0000))
        return reply(exception(fc, EXCEPTION.illegalDataValue));
      if (addr >= slave.coils.length) return reply(exception(fc, EXCEPTION.illegalDataAddress));
      slave.coils[addr] = value === 0xff00 ? 1 : 0;
      return reply(pdu.slice(0, 5));
    }
    case 6: {
      if (pdu.length < 5) return reply(exception(fc, EXCEPTION.illegalDataValue));
      if (addr >= slave.holding.length) return reply(exception(fc, EXCEPTION.illegalDataAddress));
      slave.holding[addr] = u16(pdu, 3);
      return reply(pdu.slice(0, 5));
    }
    case 15: {
      const count = pdu[5] ?? -1;
      if (qty < 1 || qty > 1968 || count !== Math.ceil(qty / 8) || pdu.length < 6 + count)
        return reply(exception(fc, EXCEPTION.illegalDataValue));
      if (addr + qty > slave.coils.length) return reply(exception(fc, EXCEPTION.illegalDataAddress));
      for (let i = 0; i < qty; i++) slave.coils[addr + i] = ((pdu[6 + (i >> 3)] ?? 0) >> (i & 7)) & 1;
      return reply(pdu.slice(0, 5));
    }
    case 16: {
      const count = pdu[5] ?? -1;
      if (qty < 1 || qty > 123 || count !== qty * 2 || pdu.length < 6 + count)
        return reply(exception(fc, EXCEPTION.illegalDataValue));
      if (addr + qty > slave.holding.length) return reply(exception(fc, EXCEPTION.illegalDataAddress));
      for (let i = 0; i < qty; i++) slave.holding[addr + i] = u16(pdu, 6 + i * 2);
      return reply(pdu.slice(0, 5));
    }
    default:
      return reply(exception(fc, EXCEPTION.illegalFunction));
  }
}

/** Whether a request PDU reads or writes `target.register` (with `target.function`, if set). */
function covers(pdu: Uint8Array | undefined, target: SlaveFaults["target"]): boolean {
  if (!target) return true;
  if (!pdu) return false;
  const fc = pdu[0] ?? 0;
  if (target.function !== undefined && fc !== target.function) return false;
  const addr = u16(pdu, 1);
  const qty = fc === 5 || fc === 6 ? 1 : u16(pdu, 3);
  return target.register >= addr && target.register < addr + qty;
}

/**
 * Current faults of a slave for one request: what tests set plus what the scenario says now.
 * One-shot faults (`corruptNext`, `silentNext`) are used up by the request they hit.
 */
export function effectiveFaults(
  slave: SimulatedSlave,
  player: ScenarioPlayer | undefined,
  pdu?: Uint8Array,
): Required<Omit<SlaveFaults, "target" | "corruptNext" | "silentNext">> {
  const corruptEvent = player?.active("corrupt-frames", slave.id);
  const turnaround = player?.active("turnaround", slave.id);
  const f = slave.faults;
  const hit = covers(pdu, f.target);
  let once = { silent: false, corrupt: false };
  if (hit && (f.silentNext ?? 0) > 0) {
    f.silentNext = (f.silentNext ?? 0) - 1;
    once = { silent: true, corrupt: false };
  } else if (hit && (f.corruptNext ?? 0) > 0) {
    f.corruptNext = (f.corruptNext ?? 0) - 1;
    once = { silent: false, corrupt: true };
  }
  return {
    silent:
      once.silent ||
      (hit && !!f.silent) ||
      player?.active("power-cut", slave.id) !== undefined ||
      player?.active("not-answering", slave.id) !== undefined,
    corrupt:
      once.corrupt ||
      (hit && !!f.corrupt) ||
      (corruptEvent?.kind === "corrupt-frames" && Math.random() < corruptEvent.probability),
    sensorFault: !!f.sensorFault,
    turnaroundMs: (f.turnaroundMs ?? 0) + (turnaround?.kind === "turnaround" ? turnaround.delayMs : 0),
  };
}
