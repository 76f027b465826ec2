/**
 * Raw probe value → temperature and contract quality flag:
 *
 *   raw bits ─ sentinel? ──────────────→ sensor_fault (tempC null)
 *            ─ NaN/∞ (float32)? ───────→ sensor_fault
 *            ─ value*scale+offset+cal ─ outside range? → out_of_range
 *                                      ─ else ────────→ ok
 *
 * `stale` is decided later by the stale detector, which needs history.
 */
import type { Quality } from "@coldtrace/protocol";
import type { ModbusProbeConfig, RegisterType } from "../config/buses.ts";
import { decodeRaw } from "./registers.ts";

/** Contract bounds of `celsius` (protocol/src/schemas/common.ts). */
const CONTRACT_MIN_C = -273.15;
const CONTRACT_MAX_C = 1000;

export interface DecodedTemp {
  tempC: number | null;
  quality: Quality;
  /** The raw decoded number, before scale/offset (for logs and commissioning). */
  raw: number;
}

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
  const { value, bits } = decodeRaw(bytes, at, probe.type, probe.wordOrder);
  const sentinels = probe.sentinels ?? defaultSentinels(probe.type);
  if (sentinels.includes(bits)) return { tempC: null, quality: "sensor_fault", raw: value };
  return scaleToTemp(value, probe);
}
