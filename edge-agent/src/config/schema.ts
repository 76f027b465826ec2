/**
 * The agent's configuration file, one YAML document:
 *
 *   agent:      id, siteId, dataDir, health/status intervals
 *   mqtt:       broker URL, credentials, TLS files, keepalive, backoff, batching, in-flight window
 *   outbox:     file, size bound (default: 30 days of every probe at its interval), fsync policy
 *   units[]:    fridges, freezers, rooms, transit boxes; action limits for the local alarm
 *   localAlarm: relay outputs (Modbus coils) driven when a unit stays beyond its action limit
 *   buses[]:    acquisition (config/buses.ts)
 *   logging:    level, per-component levels
 *
 * Everything but the ids, the broker URL, the units and the buses has a default. Cross-checks
 * run after the shapes are valid, so every problem is listed in one pass.
 */
import { MAX_READINGS_PER_BATCH, segmentId, unitKind } from "@coldtrace/protocol";
import { z } from "zod";
import { busesSchema, field, items, text } from "./buses.ts";

export const logLevel = z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
export type LogLevel = z.infer<typeof logLevel>;

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
  })
  .strict();

const mqttSection = z
  .object({
    url: z
      .string()
      .regex(
        /^(mqtt|mqtts|tcp|tls|ssl):\/\/[^\s/]+/,
        "must be a broker URL like mqtt://gateway:1883 or mqtts://gateway:8883",
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
    reconnect: z
      .object({
        minMs: z.number().int().min(10).default(1000),
        maxMs: z.number().int().min(10).default(60_000),
      })
      .strict()
      .refine((r) => r.minMs <= r.maxMs, { message: "minMs must not exceed maxMs", path: ["minMs"] })
      .default({ minMs: 1000, maxMs: 60_000 }),
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

export const configSchema = z
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

export type ConfigInput = z.input<typeof configSchema>;
type Parsed = z.output<typeof configSchema>;

/** The effective configuration: validated, defaults applied, derived values filled in. */
export type AgentConfig = Omit<Parsed, "outbox"> & {
  outbox: Parsed["outbox"] & { path: string; maxReadings: number };
};
export type UnitConfig = AgentConfig["units"][number];
export type AlarmOutputConfig = AgentConfig["localAlarm"]["outputs"][number];
export type MqttConfig = AgentConfig["mqtt"];
