/** Temperature → register words in a given type and word order (see edge-agent's decoder for the orders). */
import type { RegisterType, WordOrder } from "./scenario.ts";

export function registerCount(type: RegisterType): 1 | 2 {
  return type === "int16" || type === "uint16" ? 1 : 2;
}

/** Encodes `value` (clamped to the type) as register words laid out in `order`. */
export function encodeValue(value: number, type: RegisterType, order: WordOrder): number[] {
  const view = new DataView(new ArrayBuffer(4));
  const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, Number.isNaN(v) ? 0 : v));
  switch (type) {
    case "int16":
      view.setInt16(0, clamp(value, -32768, 32767));
      break;
    case "uint16":
      view.setUint16(0, clamp(value, 0, 65535));
      break;
    case "int32":
      view.setInt32(0, clamp(value, -2147483648, 2147483647));
      break;
    case "uint32":
      view.setUint32(0, clamp(value, 0, 4294967295));
      break;
    case "float32":
      view.setFloat32(0, value);
      break;
  }
  const [a, b, c, d] = [view.getUint8(0), view.getUint8(1), view.getUint8(2), view.getUint8(3)];
  if (registerCount(type) === 1) return [order === "BADC" || order === "DCBA" ? (b << 8) | a : (a << 8) | b];
  switch (order) {
    case "ABCD":
      return [(a << 8) | b, (c << 8) | d];
    case "CDAB":
      return [(c << 8) | d, (a << 8) | b];
    case "BADC":
      return [(b << 8) | a, (d << 8) | c];
    case "DCBA":
      return [(d << 8) | c, (b << 8) | a];
  }
}
