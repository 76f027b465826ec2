/**
 * Configuration of the agent's acquisition: the buses (an RS-485 port, a Modbus TCP slave, a
 * serial line) and the probes behind each. The top-level config loader embeds `busesSchema`
 * under `buses:`; everything here has a sane default so a technician writes only what differs
 * from the probe's datasheet defaults (9600 8N1, holding registers, int16, ABCD …).
 *
 *   buses[] ─┬─ modbus-rtu    port, baudRate, parity … ─ probes[] { slaveId, register, type … }
 *            ├─ modbus-tcp    host, port 502 …         ─ probes[] { slaveId, register, type … }
 *            └─ serial-ascii  port, lineRegex …        ─ probes[] { channel? … }
 */
import { segmentId } from "@coldtrace/protocol";
import { z } from "zod";

/** Register value types a probe can hold. 32-bit types span two registers. */
export const registerType = z.enum(["int16", "uint16", "int32", "uint32", "float32"]);
export type RegisterType = z.infer<typeof registerType>;

/**
 * Byte/word order of a value on the wire, naming the bytes of the big-endian value A (most
 * significant) … D. ABCD is Modbus's own big-endian; CDAB ("word swap") is the commonest
 * vendor variant. For 16-bit types only the byte swap matters (BADC/DCBA swap the two bytes).
 */
export const wordOrder = z.enum(["ABCD", "CDAB", "BADC", "DCBA"]);
export type WordOrder = z.infer<typeof wordOrder>;

const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "must be a date YYYY-MM-DD")
  .refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)), "must be a real calendar date");

const calibration = z
  .object({
    /** Added to the measured value, in °C, from the calibration certificate. */
    offsetC: z.number().finite().default(0),
    /** Due date of the next calibration (certificate), UTC. */
    dueDate: isoDate.optional(),
  })
  .strict();

/** The measurable range of the probe (datasheet); values outside are `out_of_range`. */
const rangeC = z
  .object({ minC: z.number().finite(), maxC: z.number().finite() })
  .strict()
  .refine((r) => r.minC < r.maxC, { message: "minC must be below maxC" });

const probeCommon = {
  /** The probe id (contract segmentId), unique across the agent. */
  id: segmentId,
  /** The unit (fridge, freezer, box …) this probe measures. */
  unit: segmentId,
  intervalMs: z.number().int().min(100).max(86_400_000).default(10_000),
  calibration: calibration.optional(),
  range: rangeC.optional(),
  /** Value unchanged for longer than this → quality `stale`. Off when absent. */
  staleAfterMs: z.number().int().positive().optional(),
  /** Raw value → °C: value * scale + offset (then + calibration.offsetC). */
  scale: z.number().finite().default(1),
  offset: z.number().finite().default(0),
};

export const modbusProbeSchema = z
  .object({
    ...probeCommon,
    /** Modbus slave (unit) id. Spec: 1–247 are individual addresses, 0 is broadcast. */
    slaveId: z.number().int().min(1).max(247),
    /** 3 = read holding registers, 4 = read input registers. */
    function: z.union([z.literal(3), z.literal(4)]).default(3),
    /** Zero-based register address as on the wire (not the 30001/40001 notation). */
    register: z.number().int().min(0).max(65_535),
    type: registerType.default("int16"),
    wordOrder: wordOrder.default("ABCD"),
    /**
     * Raw values (the unsigned bit pattern, e.g. 0x8000) that the probe uses to say "sensor
     * fault" (open/short circuit). Default: 0x8000 and 0x7FFF for 16-bit types,
     * 0x80000000 and 0x7FFFFFFF for 32-bit integers, none for float32 (NaN/∞ always are).
     */
    sentinels: z.array(z.number().int().min(0).max(0xffff_ffff)).optional(),
  })
  .strict()
  .refine((p) => p.register + registerCount(p.type) <= 65_536, {
    message: "register block runs past 65535",
    path: ["register"],
  });

export const asciiProbeSchema = z
  .object({
    ...probeCommon,
    /** The value of the regex's `probe` group that belongs to this probe (multi-channel probes). */
    channel: z.string().min(1).optional(),
  })
  .strict();

const serialSettings = {
  /** Prefer a stable name: /dev/serial/by-id/usb-FTDI_… rather than /dev/ttyUSB0. */
  port: z.string().min(1),
  baudRate: z.number().int().positive().default(9600),
  parity: z.enum(["none", "even", "odd"]).default("none"),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
};

const backoff = z
  .object({
    initialMs: z.number().int().positive().default(1000),
    maxMs: z.number().int().positive().default(60_000),
  })
  .strict()
  .default({ initialMs: 1000, maxMs: 60_000 });

const modbusSettings = {
  timeoutMs: z.number().int().min(10).max(60_000).default(1000),
  /** Extra attempts after a failed request, before the reading is a comm_error. */
  retries: z.number().int().min(0).max(10).default(1),
  /** Merge probes whose registers are at most this many registers apart into one read. */
  maxBlockGap: z.number().int().min(0).max(124).default(0),
  /** Per-slave exponential backoff after failures. */
  backoff,
};

const busId = segmentId;

export const modbusRtuBusSchema = z
  .object({
    id: busId,
    type: z.literal("modbus-rtu"),
    ...serialSettings,
    ...modbusSettings,
    probes: z.array(modbusProbeSchema).min(1),
  })
  .strict();

export const modbusTcpBusSchema = z
  .object({
    id: busId,
    type: z.literal("modbus-tcp"),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65_535).default(502),
    ...modbusSettings,
    probes: z.array(modbusProbeSchema).min(1),
  })
  .strict();

function compiles(source: string): RegExp | undefined {
  try {
    return new RegExp(source);
  } catch {
    return undefined;
  }
}

export const serialAsciiBusSchema = z
  .object({
    id: busId,
    type: z.literal("serial-ascii"),
    ...serialSettings,
    /**
     * One line → one value. A JavaScript regex with a named group `value` (a decimal number)
     * and, for multi-channel probes, a named group `probe` matched against `probes[].channel`.
     * A `value` that matches but is not a number (the default accepts `ERR` and `---`) means the
     * probe reports a sensor fault.
     */
    lineRegex: z
      .string()
      .default(String.raw`^(?<probe>[A-Za-z0-9_]+)=(?<value>[+-]?\d+(?:\.\d+)?|ERR|-+)C?$`),
    /** No valid line for a probe within this long → comm_error. */
    lineTimeoutMs: z.number().int().positive().default(30_000),
    probes: z.array(asciiProbeSchema).min(1),
  })
  .strict()
  .superRefine((bus, ctx) => {
    const re = compiles(bus.lineRegex);
    if (!re) {
      ctx.addIssue({ code: "custom", message: "is not a valid regular expression", path: ["lineRegex"] });
      return;
    }
    if (!bus.lineRegex.includes("(?<value>")) {
      ctx.addIssue({ code: "custom", message: "must have a named group (?<value>…)", path: ["lineRegex"] });
    }
    const hasProbeGroup = bus.lineRegex.includes("(?<probe>");
    if (bus.probes.length > 1) {
      bus.probes.forEach((p, i) => {
        if (p.channel === undefined)
          ctx.addIssue({
            code: "custom",
            message: "is required when a serial line carries several probes",
            path: ["probes", i, "channel"],
          });
      });
    }
    if (bus.probes.some((p) => p.channel !== undefined) && !hasProbeGroup) {
      ctx.addIssue({
        code: "custom",
        message: "must have a named group (?<probe>…) when probes set a channel",
        path: ["lineRegex"],
      });
    }
  });

export const busSchema = z.discriminatedUnion("type", [
  modbusRtuBusSchema,
  modbusTcpBusSchema,
  serialAsciiBusSchema,
]);

/**
 * Cross-checks of the whole list. They run even when some bus is malformed (zod skips plain
 * refinements then), reading what is there defensively, so one `check-config` names every
 * problem at once instead of revealing the duplicates only after the shapes are fixed.
 */
export const busesSchema = z.array(busSchema).superRefine(
  (value, ctx) => {
    const busIds = new Set<string>();
    const probeIds = new Set<string>();
    const ports = new Set<string>();
    items(value).forEach((bus, i) => {
      const id = text(field(bus, "id"));
      if (id !== undefined) {
        if (busIds.has(id))
          ctx.addIssue({ code: "custom", message: `duplicate bus id ${id}`, path: [i, "id"] });
        busIds.add(id);
      }
      const port = text(field(bus, "port"));
      if (field(bus, "type") !== "modbus-tcp" && port !== undefined) {
        // One serial port is one bus: two bus entries would open it twice and collide on the wire.
        if (ports.has(port))
          ctx.addIssue({ code: "custom", message: `port ${port} is used by another bus`, path: [i, "port"] });
        ports.add(port);
      }
      items(field(bus, "probes")).forEach((p, j) => {
        const probeId = text(field(p, "id"));
        if (probeId === undefined) return;
        if (probeIds.has(probeId))
          ctx.addIssue({
            code: "custom",
            message: `duplicate probe id ${probeId}`,
            path: [i, "probes", j, "id"],
          });
        probeIds.add(probeId);
      });
    });
  },
  { when: () => true },
);

/** What a cross-check may read of a value that failed its own shape: arrays, objects, strings. */
export function items(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
export function field(v: unknown, key: string): unknown {
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)[key]
    : undefined;
}
export function text(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

export type BusConfig = z.output<typeof busSchema>;
export type BusConfigInput = z.input<typeof busSchema>;
export type ModbusRtuBusConfig = z.output<typeof modbusRtuBusSchema>;
export type ModbusTcpBusConfig = z.output<typeof modbusTcpBusSchema>;
export type SerialAsciiBusConfig = z.output<typeof serialAsciiBusSchema>;
export type ModbusProbeConfig = z.output<typeof modbusProbeSchema>;
export type AsciiProbeConfig = z.output<typeof asciiProbeSchema>;
export type ProbeConfig = ModbusProbeConfig | AsciiProbeConfig;

/** Registers a value of this type occupies. */
export function registerCount(type: RegisterType): 1 | 2 {
  return type === "int16" || type === "uint16" ? 1 : 2;
}
