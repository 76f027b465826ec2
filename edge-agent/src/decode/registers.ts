/**
 * Modbus register bytes → numbers. A Modbus register is 16 bits sent big-endian (Modbus
 * Application Protocol v1.1b3 §4.2); 32-bit values span two registers and vendors disagree on
 * the order of the words and bytes, so every decoder takes a `WordOrder`:
 *
 *   wire bytes  b0 b1 | b2 b3       (register n, register n+1)
 *   ABCD  → A B C D   big-endian, Modbus's own order
 *   CDAB  → C D A B   word swap (the commonest vendor variant)
 *   BADC  → B A D C   byte swap inside each word
 *   DCBA  → D C B A   little-endian
 *
 * Decoding never throws on any byte content; only input too short for the type throws a
 * ColdtraceError CT_PROBE_DECODE.
 */
import { ColdtraceError } from "@coldtrace/protocol";
import { type RegisterType, registerCount, type WordOrder } from "../config/buses.ts";

export const wordOrders: readonly WordOrder[] = ["ABCD", "CDAB", "BADC", "DCBA"];

export interface RawValue {
  /** The decoded number (may be NaN or ±Infinity for float32). */
  value: number;
  /** The value's bits as an unsigned integer in canonical (ABCD) order, for sentinel checks. */
  bits: number;
}

/** Puts `count` registers starting at byte `at` into canonical big-endian order. */
function canonical(bytes: Uint8Array, at: number, words: 1 | 2, order: WordOrder): number[] {
  const need = at + words * 2;
  if (!Number.isInteger(at) || at < 0 || bytes.length < need) {
    throw new ColdtraceError(
      "CT_PROBE_DECODE",
      `register block too short: need ${need} bytes, got ${bytes.length}`,
      { need, got: bytes.length },
    );
  }
  const b0 = bytes[at]!;
  const b1 = bytes[at + 1]!;
  if (words === 1) return order === "BADC" || order === "DCBA" ? [b1, b0] : [b0, b1];
  const b2 = bytes[at + 2]!;
  const b3 = bytes[at + 3]!;
  switch (order) {
    case "ABCD":
      return [b0, b1, b2, b3];
    case "CDAB":
      return [b2, b3, b0, b1];
    case "BADC":
      return [b1, b0, b3, b2];
    case "DCBA":
      return [b3, b2, b1, b0];
  }
}

/** Decodes one value of `type` at byte offset `at` of `bytes`. */
export function decodeRaw(bytes: Uint8Array, at: number, type: RegisterType, order: WordOrder): RawValue {
  const c = canonical(bytes, at, registerCount(type), order);
  const view = new DataView(Uint8Array.from(c).buffer);
  switch (type) {
    case "int16":
      return { value: view.getInt16(0), bits: view.getUint16(0) };
    case "uint16":
      return { value: view.getUint16(0), bits: view.getUint16(0) };
    case "int32":
      return { value: view.getInt32(0), bits: view.getUint32(0) };
    case "uint32":
      return { value: view.getUint32(0), bits: view.getUint32(0) };
    case "float32":
      return { value: view.getFloat32(0), bits: view.getUint32(0) };
  }
}

/** Encodes a value as register bytes in the given order (the inverse of decodeRaw; for simulators and tests). */
export function encodeRaw(value: number, type: RegisterType, order: WordOrder): Uint8Array {
  const view = new DataView(new ArrayBuffer(4));
  switch (type) {
    case "int16":
      view.setInt16(0, value);
      break;
    case "uint16":
      view.setUint16(0, value);
      break;
    case "int32":
      view.setInt32(0, value);
      break;
    case "uint32":
      view.setUint32(0, value);
      break;
    case "float32":
      view.setFloat32(0, value);
      break;
  }
  const n = registerCount(type) * 2;
  const c = new Uint8Array(view.buffer, 0, n);
  // Every one of the four permutations is its own inverse, so canonical() also encodes.
  return Uint8Array.from(canonical(c, 0, registerCount(type), order));
}

/** Converts register words (as modbus-serial returns them) to wire bytes. */
export function registersToBytes(registers: readonly number[]): Uint8Array {
  const out = new Uint8Array(registers.length * 2);
  registers.forEach((r, i) => {
    out[i * 2] = (r >> 8) & 0xff;
    out[i * 2 + 1] = r & 0xff;
  });
  return out;
}

/** A 2-register pair decoded as int32/uint32/float32 in all four orders (commissioning aid). */
export function decodeAllOrders(
  bytes: Uint8Array,
): { order: WordOrder; int32: number; uint32: number; float32: number }[] {
  return wordOrders.map((order) => ({
    order,
    int32: decodeRaw(bytes, 0, "int32", order).value,
    uint32: decodeRaw(bytes, 0, "uint32", order).value,
    float32: decodeRaw(bytes, 0, "float32", order).value,
  }));
}
