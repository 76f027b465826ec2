/**
 * The edge agent's configuration document: the YAML file on the box and, since remote
 * configuration, the `config` of a desired-configuration message (schemas/agent-remote.ts).
 * One schema for both, so the gateway refuses to send what the agent would refuse to run.
 *
 *   agent:      id, siteId, dataDir, health/status intervals, clock checks, remote config
 *   mqtt:       broker URL, credentials (by file reference), TLS files, keepalive, backoff, batching
 *   outbox:     file, size bound (default: 30 days of every probe at its interval), fsync policy
 *   units[]:    fridges, freezers, rooms, transit boxes; action limits for the local alarm
 *   localAlarm: relay outputs (Modbus coils) driven when a unit stays beyond its action limit
 *   buses[]:    acquisition: an RS-485 port, a Modbus TCP slave, a serial line, and their probes
 *   logging:    level, per-component levels
 *
 *   buses[] ─┬─ modbus-rtu    port, baudRate, parity … ─ probes[] { slaveId, register, type … }
 *            ├─ modbus-tcp    host, port 502 …         ─ probes[] { slaveId, register, type … }
 *            └─ serial-ascii  port, lineRegex …        ─ probes[] { channel? … }
 *
 * Everything but the ids, the broker URL, the units and the buses has a default, so a
 * technician writes only what differs from the probe's datasheet (9600 8N1, holding
 * registers, int16, ABCD …). Cross-checks run even when some section is malformed, so every
 * problem is listed in one pass.
 */
import { z } from "zod";
import { MAX_READINGS_PER_BATCH } from "./agent.ts";
import { segmentId, unitKind } from "./common.ts";

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
function items(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function field(v: unknown, key: string): unknown {
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)[key]
    : undefined;
}
function text(v: unknown): string | undefined {
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

export const logLevel = z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
export type LogLevel = z.infer<typeof logLevel>;

const clockDefaults = {
  sync: "auto",
  checkIntervalMs: 60_000,
  jumpThresholdMs: 2000,
  holdUnsyncedMs: 600_000,
} as const;

const clockSection = z
  .object({
    /**
     * How the agent learns whether the wall clock is synchronised: `timesyncd` (the flag file
     * systemd-timesyncd touches on every sync), `timedatectl` (the kernel's NTP status, also
     * kept by chrony and ntpd), `auto` (timesyncd when it runs, else timedatectl), `none`.
     */
    sync: z.enum(["auto", "timesyncd", "timedatectl", "none"]).default(clockDefaults.sync),
    /** Synchronisation is checked this often (every 5 s while not synchronised). */
    checkIntervalMs: z.number().int().min(100).max(3_600_000).default(clockDefaults.checkIntervalMs),
    /** A change of wall minus monotonic time larger than this is a jump of the wall clock. */
    jumpThresholdMs: z.number().int().min(100).max(86_400_000).default(clockDefaults.jumpThresholdMs),
    /**
     * While the clock is not synchronised, readings wait in the outbox this long for it to
     * sync, so they can be re-anchored before they are sent; then they go out flagged.
     */
    holdUnsyncedMs: z.number().int().min(0).max(86_400_000).default(clockDefaults.holdUnsyncedMs),
  })
  .strict()
  .default(clockDefaults);

const agentSection = z
  .object({
    /** The agent id (contract segmentId); also the MQTT client id suffix. */
    id: segmentId,
    siteId: segmentId,
    /** Where the outbox lives; systemd's StateDirectory gives /var/lib/coldtrace-agent. */
    dataDir: z.string().min(1).default("/var/lib/coldtrace-agent"),
    /** Probe health is published this often, and at once whenever a probe changes state. */
    healthIntervalMs: z.number().int().min(1000).max(3_600_000).default(60_000),
    /** How often the status row for `coldtrace-agent status` is rewritten (SD-card wear). */
    statusIntervalMs: z.number().int().min(1000).max(3_600_000).default(10_000),
    /** Clock integrity on boxes without a real-time clock (docs/technician/clock.md). */
    clock: clockSection,
    /**
     * Configurations pushed by the gateway (schemas/agent-remote.ts). Only the box's own file
     * sets this section: a pushed configuration cannot switch remote configuration off.
     */
    remoteConfig: z
      .object({
        enabled: z.boolean().default(true),
        /** After applying a pushed configuration: time to reach the broker and the probes, else roll back. */
        graceMs: z.number().int().min(1000).max(3_600_000).default(120_000),
      })
      .strict()
      .default({ enabled: true, graceMs: 120_000 }),
  })
  .strict();

const mqttSection = z
  .object({
    url: z
      .string()
      .regex(
        /^(mqtt|mqtts|tcp|tls|ssl):\/\/[^\s/]+/,
        "must be a broker URL like mqtt://gateway:1883 or mqtts://gateway:8883",
      )
      // Credentials belong in username/passwordFile: a URL is logged and sent in a birth's hash input.
      .refine(
        (u) => !/^[a-z]+:\/\/[^/]*@/.test(u),
        "must not carry credentials; use username and passwordFile",
      ),
    clientId: z.string().min(1).max(64).optional(),
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    /** A file whose first line is the password (keep secrets out of the config). */
    passwordFile: z.string().min(1).optional(),
    tls: z
      .object({
        caFile: z.string().min(1).optional(),
        certFile: z.string().min(1).optional(),
        keyFile: z.string().min(1).optional(),
        rejectUnauthorized: z.boolean().default(true),
      })
      .strict()
      .optional(),
    keepaliveSec: z.number().int().min(5).max(3600).default(30),
    connectTimeoutMs: z.number().int().min(500).max(120_000).default(10_000),
    /**
     * Backoff between connection attempts: a ceiling doubling from minMs up to maxMs, each
     * delay drawn at random below it (full jitter), so a fleet that lost the same broker
     * spreads out. The 5 s cap keeps the wait after the broker is back under 5 s
     * (bench:reconnect measures it).
     */
    reconnect: z
      .object({
        minMs: z.number().int().min(10).default(1000),
        maxMs: z.number().int().min(10).default(5000),
      })
      .strict()
      .refine((r) => r.minMs <= r.maxMs, { message: "minMs must not exceed maxMs", path: ["minMs"] })
      .default({ minMs: 1000, maxMs: 5000 }),
    batch: z
      .object({
        maxReadings: z.number().int().min(1).max(MAX_READINGS_PER_BATCH).default(500),
        delayMs: z.number().int().min(0).max(60_000).default(500),
      })
      .strict()
      .default({ maxReadings: 500, delayMs: 500 }),
    /** Telemetry messages awaiting PUBACK at once during replay. */
    inflightWindow: z.number().int().min(1).max(1000).default(64),
  })
  .strict()
  .refine((m) => !(m.password !== undefined && m.passwordFile !== undefined), {
    message: "give password or passwordFile, not both",
    path: ["passwordFile"],
  })
  .refine((m) => !(m.tls?.certFile !== undefined) === !(m.tls?.keyFile !== undefined), {
    message: "certFile and keyFile go together",
    path: ["tls"],
  });

const outboxSection = z
  .object({
    /** Default: {agent.dataDir}/outbox.db */
    path: z.string().min(1).optional(),
    /** Size bound in readings. Default: retentionDays of every probe at its interval. */
    maxReadings: z.number().int().min(100).optional(),
    retentionDays: z.number().min(1).max(3650).default(30),
    /** SQLite synchronous pragma in WAL mode; NORMAL spares the SD card, FULL fsyncs every commit. */
    synchronous: z.enum(["NORMAL", "FULL"]).default("NORMAL"),
  })
  .strict()
  .default({ retentionDays: 30, synchronous: "NORMAL" });

const unitSection = z
  .object({
    id: segmentId,
    kind: unitKind,
    name: z.string().max(128).optional(),
    /** Action limits (°C) for the local alarm; the gateway's excursion rules are separate. */
    actionLimits: z
      .object({ lowC: z.number().finite().optional(), highC: z.number().finite().optional() })
      .strict()
      .refine((l) => l.lowC === undefined || l.highC === undefined || l.lowC < l.highC, {
        message: "lowC must be below highC",
        path: ["lowC"],
      })
      .optional(),
    /** Beyond an action limit this long before the local alarm trips (SOP: 30 min). */
    alarmDelayMs: z.number().int().min(0).max(86_400_000).default(1_800_000),
  })
  .strict();

const alarmOutput = z
  .object({
    /** A modbus-rtu or modbus-tcp bus from buses[]. */
    busId: segmentId,
    slaveId: z.number().int().min(1).max(247),
    /** Zero-based coil address of the relay. */
    coil: z.number().int().min(0).max(65_535),
    /** Units that drive this relay; default all units with action limits. */
    units: z.array(segmentId).min(1).optional(),
  })
  .strict();

const localAlarmSection = z
  .object({
    enabled: z.boolean().default(true),
    outputs: z.array(alarmOutput).default([]),
  })
  .strict()
  .default({ enabled: true, outputs: [] });

const loggingSection = z
  .object({
    level: logLevel.default("info"),
    /** Per-component levels, e.g. `{ publisher: debug, alarm: info }`. */
    components: z.record(z.string(), logLevel).default({}),
  })
  .strict()
  .default({ level: "info", components: {} });

export const agentConfigSchema = z
  .object({
    agent: agentSection,
    mqtt: mqttSection,
    outbox: outboxSection,
    units: z.array(unitSection).min(1, "must list at least one unit"),
    localAlarm: localAlarmSection,
    buses: busesSchema.min(1, "must list at least one bus"),
    logging: loggingSection,
  })
  .strict()
  // Runs even when some section is malformed (see busesSchema), reading what is there.
  .superRefine(
    (cfg, ctx) => {
      const units = new Map<string, number>();
      items(field(cfg, "units")).forEach((u, i) => {
        const id = text(field(u, "id"));
        if (id === undefined) return;
        if (units.has(id))
          ctx.addIssue({ code: "custom", message: `duplicate unit id ${id}`, path: ["units", i, "id"] });
        units.set(id, i);
      });
      const used = new Set<string>();
      items(field(cfg, "buses")).forEach((bus, i) => {
        items(field(bus, "probes")).forEach((p, j) => {
          const unit = text(field(p, "unit"));
          if (unit === undefined) return;
          used.add(unit);
          if (!units.has(unit))
            ctx.addIssue({
              code: "custom",
              message: `unit ${unit} is not in units[] (known: ${[...units.keys()].join(", ") || "none"})`,
              path: ["buses", i, "probes", j, "unit"],
            });
        });
      });
      // Only when buses[] is there at all: a missing list is reported as such, not once per unit.
      if (Array.isArray(field(cfg, "buses"))) {
        items(field(cfg, "units")).forEach((u, i) => {
          const id = text(field(u, "id"));
          if (id !== undefined && !used.has(id))
            ctx.addIssue({
              code: "custom",
              message: `unit ${id} has no probe in buses[]`,
              path: ["units", i, "id"],
            });
        });
      }
      const buses = items(field(cfg, "buses"));
      items(field(field(cfg, "localAlarm"), "outputs")).forEach((o, i) => {
        const busId = text(field(o, "busId"));
        const bus = buses.find((b) => field(b, "id") === busId);
        if (busId !== undefined && !bus)
          ctx.addIssue({
            code: "custom",
            message: `bus ${busId} is not in buses[]`,
            path: ["localAlarm", "outputs", i, "busId"],
          });
        else if (bus && field(bus, "type") === "serial-ascii")
          ctx.addIssue({
            code: "custom",
            message: `bus ${busId} is serial-ascii; a relay needs a modbus-rtu or modbus-tcp bus`,
            path: ["localAlarm", "outputs", i, "busId"],
          });
        items(field(o, "units")).forEach((u, j) => {
          const unit = text(u);
          if (unit !== undefined && !units.has(unit))
            ctx.addIssue({
              code: "custom",
              message: `unit ${unit} is not in units[]`,
              path: ["localAlarm", "outputs", i, "units", j],
            });
        });
      });
    },
    { when: () => true },
  );

export type AgentConfigInput = z.input<typeof agentConfigSchema>;
/** A validated configuration document, defaults applied (the agent derives outbox defaults on top). */
export type AgentConfigParsed = z.output<typeof agentConfigSchema>;
