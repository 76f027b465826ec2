/**
 * The gateway configuration: one YAML file, validated once with zod, then frozen.
 * Every setting has a default, so an empty file starts a gateway with the embedded broker on
 * 1883, SQLite at ./data/coldtrace.db and the API on 8080.
 */
import { segmentId } from "@coldtrace/protocol";
import { z } from "zod";
import { quarantinePolicy } from "../lots/policy.ts";

const port = z.number().int().min(0).max(65535);

const tlsSchema = z
  .object({
    /** MQTT over TLS, MQTT 3.1.1 §5: the IANA port is 8883. */
    port: port.default(8883),
    certFile: z.string().min(1),
    keyFile: z.string().min(1),
  })
  .strict();

export const brokerSchema = z
  .object({
    /** embedded: the gateway runs aedes itself; external: it connects to `url` (Mosquitto). */
    mode: z.enum(["embedded", "external"]).default("embedded"),
    host: z.string().default("0.0.0.0"),
    port: port.default(1883),
    tls: tlsSchema.optional(),
    /** External broker URL, e.g. mqtt://127.0.0.1:1883 (mode external only). */
    url: z.string().optional(),
    /** The gateway's own MQTT account on an external broker. */
    username: z.string().optional(),
    password: z.string().optional(),
    /** A file whose first line is the password, to keep the secret out of the configuration. */
    passwordFile: z.string().min(1).optional(),
    /**
     * Keep the gateway's MQTT session on the broker while it is down (clean: false), so the
     * broker queues agents' QoS 1 messages meanwhile. Turn off only for throwaway gateways
     * (tests) on a shared broker.
     */
    persistentSession: z.boolean().default(true),
    /** Sites whose agent topics the gateway subscribes to; `+` is every site. */
    subscribeSites: z
      .array(z.union([segmentId, z.literal("+")]))
      .min(1)
      .default(["+"]),
    /** Device and service credentials (hashed secrets), written by `credentials add`. */
    credentialsFile: z.string().default("./data/credentials.json"),
    /**
     * Disconnect a subscriber whose socket has not drained for this long, so one frozen
     * client cannot stall delivery to the others (aedes drainTimeout).
     */
    drainTimeoutMs: z.number().int().min(100).default(10_000),
    /** Messages queued per client before its session is set up (aedes queueLimit). */
    queueLimit: z.number().int().min(1).default(42),
    /**
     * QoS 1 messages the broker holds per offline persistent (cleanSession: false) client,
     * e.g. a planner or monitor that went away; newer ones are dropped, as Mosquitto's
     * max_queued_messages. Embedded mode only.
     */
    maxQueuedMessages: z.number().int().min(1).default(1000),
    /** Payload bytes held per offline persistent client (0 = no byte bound). Embedded mode only. */
    maxQueuedBytes: z
      .number()
      .int()
      .min(0)
      .default(16 * 1024 * 1024),
    /** Messages the broker processes at once (aedes concurrency). */
    concurrency: z.number().int().min(1).default(100),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.mode === "external" && !b.url) {
      ctx.addIssue({ code: "custom", path: ["url"], message: "required when mode is external" });
    }
    if (b.password !== undefined && b.passwordFile !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["passwordFile"],
        message: "give password or passwordFile, not both",
      });
    }
  });

const sqliteRecords = z
  .object({ backend: z.literal("sqlite"), path: z.string().default("./data/coldtrace.db") })
  .strict();
const postgresRecords = z.object({ backend: z.literal("postgres"), url: z.string().min(1) }).strict();

export const storageSchema = z
  .object({
    /** Units, probes, agents, alarms, excursions, gaps (and the lots module's tables). */
    records: z
      .discriminatedUnion("backend", [sqliteRecords, postgresRecords])
      .default({ backend: "sqlite", path: "./data/coldtrace.db" }),
    /**
     * Readings: in the records database (`sqlite` / `postgres`, the same as records), or in
     * InfluxDB 1.x (dedupe ledger in the records database).
     */
    readings: z
      .discriminatedUnion("backend", [
        z.object({ backend: z.literal("sqlite") }).strict(),
        z.object({ backend: z.literal("postgres") }).strict(),
        z
          .object({
            backend: z.literal("influx"),
            url: z.string().min(1),
            database: z.string().min(1).default("coldtrace"),
            retentionPolicy: z.string().min(1).optional(),
          })
          .strict(),
      ])
      .default({ backend: "sqlite" }),
  })
  .strict()
  .superRefine((st, ctx) => {
    if (st.readings.backend !== "influx" && st.readings.backend !== st.records.backend) {
      ctx.addIssue({
        code: "custom",
        path: ["readings", "backend"],
        message: `must be "${st.records.backend}" (the records database) or "influx"`,
      });
    }
  });

export const ingestSchema = z
  .object({
    /**
     * Extra wait to coalesce telemetry when ingest is idle. 0: group commit only (messages that
     * arrive while a batch is being stored form the next batch), the lowest latency.
     */
    batchMaxDelayMs: z.number().int().min(0).max(1000).default(0),
    /** …or until this many readings are waiting. */
    batchMaxReadings: z.number().int().min(1).default(5000),
    /** Above this many readings waiting, the gateway stops reading from the broker until it catches up. */
    maxPendingReadings: z.number().int().min(100).default(100_000),
  })
  .strict();

export const engineSchema = z
  .object({
    /**
     * Readings up to this late (event time behind the unit's newest) are re-evaluated as if
     * they had come live; older ones are stored but set aside (logged, counted). The engine
     * keeps every reading of this window in memory: ~150 bytes each.
     */
    latenessWindowHours: z
      .number()
      .min(1)
      .max(24 * 30)
      .default(48),
    /** Memory bound per unit besides the window (a unit reporting every second keeps less). */
    maxRetainedPerUnit: z.number().int().min(2048).max(10_000_000).default(50_000),
    /** Readings dated further ahead of the gateway's clock are an agent clock error: set aside. */
    maxClockSkewMinutes: z
      .number()
      .min(1)
      .max(24 * 60)
      .default(15),
  })
  .strict();

export const apiTokenSchema = z
  .object({
    name: z.string().min(1).max(64),
    /** `sha256:<hex>` of the token; `coldtrace-gateway tokens create` prints both. */
    hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, "must be sha256:<64 hex digits>"),
  })
  .strict();

export const apiSchema = z
  .object({
    enabled: z.boolean().default(true),
    host: z.string().default("0.0.0.0"),
    port: port.default(8080),
    tokens: z.array(apiTokenSchema).default([]),
  })
  .strict();

const MIN = 60_000;

export const lotsSchema = z
  .object({
    /** Run the lots module (occupancy, quarantine, eligibility for the planner). */
    enabled: z.boolean().default(true),
    /** The quarantine policy (docs/qa/quarantine.md); every field optional, GDP defaults. */
    policy: quarantinePolicy.default(() => quarantinePolicy.parse({})),
    /** How often lots that expired since the last sweep are published as ineligible. */
    expirySweepMs: z
      .number()
      .int()
      .min(1000)
      .max(24 * 60 * MIN)
      .default(MIN),
    /** Deprecated: use `outbox.retentionMs` (still read when that is not set). */
    outboxRetentionMs: z.number().int().min(MIN).optional(),
  })
  .strict();

export const outboxSchema = z
  .object({
    /** Sent rows of the event outbox older than this are deleted; unsent rows never are. */
    retentionMs: z
      .number()
      .int()
      .min(MIN)
      .default(7 * 24 * 60 * MIN),
    /** How often sent rows past the retention are pruned (the first prune runs at start). */
    pruneIntervalMs: z
      .number()
      .int()
      .min(1000)
      .max(24 * 60 * MIN)
      .default(10 * MIN),
  })
  .strict();

export const gatewayConfigSchema = z
  .object({
    gatewayId: segmentId.default("gw-1"),
    log: z
      .object({
        level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
      })
      .strict()
      .default({ level: "info" }),
    broker: brokerSchema.default(brokerSchema.parse({})),
    storage: storageSchema.default(storageSchema.parse({})),
    ingest: ingestSchema.default(ingestSchema.parse({})),
    /** The excursion engine's memory and lateness bounds (profiles are below). */
    engine: engineSchema.default(engineSchema.parse({})),
    api: apiSchema.default(apiSchema.parse({})),
    /**
     * Excursion profiles per unit id (or per unit kind as a fallback), passed to the
     * excursion engine; absent units get the engine's defaults for their kind.
     */
    profiles: z
      .object({
        byUnit: z.record(z.string(), z.unknown()).default({}),
        byKind: z.record(z.string(), z.unknown()).default({}),
      })
      .strict()
      .default({ byUnit: {}, byKind: {} }),
    /** The lots module: quarantine policy and housekeeping timers. */
    lots: lotsSchema.default(() => lotsSchema.parse({})),
    /** The transactional event outbox the gateway keeps: how long sent rows stay. */
    outbox: outboxSchema.default(() => outboxSchema.parse({})),
  })
  .strict();

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;
