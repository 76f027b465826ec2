/**
 * Raw probe value → temperature and contract quality flag:
 *
 *   raw bits ─ sentinel? ──────────────────────→ sensor_fault (tempC null)
 *            ─ NaN/∞ (float32)? ───────────────→ sensor_fault
 *            ─ float32 ≠ 0 but |raw| < 1e-6? ──→ out_of_range, tempC null, `implausible`
 *            ─ value*scale+offset+cal ─ outside range? → out_of_range
 *                                      ─ else ────────→ ok
 *
 * `stale` is decided later by the stale detector, which needs history.
 *
 * Why the float floor: a float32 probe read in the wrong word order gives a normal-looking
 * number such as −3.7e-32 or 2.1e-32 (the words of 4.62 swapped), which rounds to 0 °C and
 * would pass as a reading of a room or a transit box at 0 °C. No probe measures a millionth of
 * a degree, so a non-zero float below that is a decode no probe can report. For such a decode
 * (and for any 32-bit value out of range) `plausibleOrders` names the word orders in which the
 * same registers give a believable temperature.
 */
import type { Quality } from "@coldtrace/protocol";
import type { ModbusProbeConfig, RegisterType, WordOrder } from "../config/buses.ts";
import { decodeRaw, wordOrders } from "./registers.ts";

/** Contract bounds of `celsius` (protocol/src/schemas/common.ts). */
const CONTRACT_MIN_C = -273.15;
const CONTRACT_MAX_C = 1000;

export interface DecodedTemp {
  tempC: number | null;
  quality: Quality;
  /** The raw decoded number, before scale/offset (for logs and commissioning). */
  raw: number;
  /** A float decode no probe can report (non-zero below FLOAT_FLOOR): likely a wrong word order. */
  implausible?: true;
}

/** Below any probe's resolution (the finest are 0.001 °C): a non-zero float this small is not a measurement. */
export const FLOAT_FLOOR = 1e-6;

/** What cold-chain probes measure (ultra-low freezers to hot transit boxes), for word-order hints. */
export const PLAUSIBLE_C = { minC: -100, maxC: 100 } as const;

/** Default "sensor fault" raw patterns: the extremes many probes use for open/short circuit. */
export function defaultSentinels(type: RegisterType): readonly number[] {
  switch (type) {
    case "int16":
    case "uint16":
      return [0x8000, 0x7fff];
    case "int32":
    case "uint32":
      return [0x8000_0000, 0x7fff_ffff];
    case "float32":
      return [];
  }
}

interface Scaling {
  scale: number;
  offset: number;
  calibration?: { offsetC: number } | undefined;
  range?: { minC: number; maxC: number } | undefined;
}

/** Applies scale, offset, calibration and range to a raw number. */
export function scaleToTemp(raw: number, probe: Scaling): DecodedTemp {
  if (!Number.isFinite(raw)) return { tempC: null, quality: "sensor_fault", raw };
  // Round to 1e-6 °C: 462 * 0.01 is 4.62 on the probe, not 4.6200000000000001.
  const tempC =
    Math.round((raw * probe.scale + probe.offset + (probe.calibration?.offsetC ?? 0)) * 1e6) / 1e6;
  if (!Number.isFinite(tempC) || tempC < CONTRACT_MIN_C || tempC > CONTRACT_MAX_C) {
    return { tempC: null, quality: "out_of_range", raw };
  }
  if (probe.range && (tempC < probe.range.minC || tempC > probe.range.maxC)) {
    return { tempC, quality: "out_of_range", raw };
  }
  return { tempC, quality: "ok", raw };
}

type DecodeSpec = Pick<ModbusProbeConfig, "type" | "wordOrder" | "sentinels"> & Scaling;

/** Decodes the probe's value at byte offset `at` of a register block. Throws only CT_PROBE_DECODE. */
export function decodeProbeValue(bytes: Uint8Array, at: number, probe: DecodeSpec): DecodedTemp {
  return decodeInOrder(bytes, at, probe, probe.wordOrder);
}

function decodeInOrder(bytes: Uint8Array, at: number, probe: DecodeSpec, order: WordOrder): DecodedTemp {
  const { value, bits } = decodeRaw(bytes, at, probe.type, order);
  const sentinels = probe.sentinels ?? defaultSentinels(probe.type);
  if (sentinels.includes(bits)) return { tempC: null, quality: "sensor_fault", raw: value };
  if (probe.type === "float32" && value !== 0 && Math.abs(value) < FLOAT_FLOOR)
    return { tempC: null, quality: "out_of_range", raw: value, implausible: true };
  return scaleToTemp(value, probe);
}

/** A decode worth a word-order hint: a 32-bit value that is implausible or out of range. */
export function needsOrderHint(probe: Pick<DecodeSpec, "type">, d: DecodedTemp): boolean {
  return (
    (probe.type === "int32" || probe.type === "uint32" || probe.type === "float32") &&
    (d.implausible === true || d.quality === "out_of_range")
  );
}

/**
 * The other word orders in which the same registers decode to a believable temperature: ok,
 * and within the probe's `range` or, without one, within PLAUSIBLE_C. Empty when none does
 * (then the register, type or scale is wrong rather than the order).
 */
export function plausibleOrders(
  bytes: Uint8Array,
  at: number,
  probe: DecodeSpec,
): { order: WordOrder; tempC: number }[] {
  const bounds = probe.range ?? PLAUSIBLE_C;
  const out: { order: WordOrder; tempC: number }[] = [];
  for (const order of wordOrders) {
    if (order === probe.wordOrder) continue;
    // 16-bit values only have two distinct orders (bytes as sent, or swapped).
    if (probe.type.endsWith("16") && (order === "CDAB" || order === "DCBA")) continue;
    const d = decodeInOrder(bytes, at, probe, order);
    if (d.quality === "ok" && d.tempC !== null && d.tempC >= bounds.minC && d.tempC <= bounds.maxC)
      out.push({ order, tempC: d.tempC });
  }
  return out;
}

/** "set wordOrder: CDAB (gives 4.62 °C)", or why no order helps. For logs and `read`. */
export function orderHint(orders: readonly { order: WordOrder; tempC: number }[]): string {
  if (orders.length === 0) return "no word order gives a plausible value: check register, type and scale";
  return orders.map((o) => `wordOrder ${o.order} gives ${o.tempC} °C`).join("; ");
}
