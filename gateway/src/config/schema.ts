/**
 * The gateway configuration: one YAML file, validated once with zod, then frozen. Every
 * setting has a default, so an empty file starts a gateway with the embedded broker on 1883,
 * SQLite at ./data/coldtrace.db and the API on 8080. Everything is checked at load, excursion
 * profiles included, and every problem is listed at once (load.ts).
 *
 * Each setting's description is data (`.meta({ description })`, as zigbee2mqtt's settings
 * schema carries title, description and default): docs/integrator/gateway-config.md's tables
 * are generated from this file (`npm run docs:config`), and a test fails when they drift.
 */
import { segmentId, unitKind } from "@coldtrace/protocol";
import { z } from "zod";
import { consoleSchema } from "../console/config.ts";
import { defaultProfiles, unitProfileOverride, unitProfileSchema } from "../kernel/profiles.ts";

const d = (description: string) => ({ description });
const port = z.number().int().min(0).max(65535);
const MIN = 60_000;

const tlsSchema = z
  .object({
    port: port
      .default(8883)
      .meta(d("MQTT over TLS listener of the embedded broker (MQTT 3.1.1 §5: the IANA port is 8883)")),
    certFile: z.string().min(1).meta(d("server certificate (PEM)")),
    keyFile: z.string().min(1).meta(d("its private key (PEM)")),
  })
  .strict();

export const brokerSchema = z
  .object({
    mode: z
      .enum(["embedded", "external"])
      .default("embedded")
      .meta(
        d("`embedded`: aedes inside the gateway; `external`: connect to `url` ([Mosquitto](mosquitto.md))"),
      ),
    host: z.string().default("0.0.0.0").meta(d("embedded broker's listener address")),
    port: port
      .default(1883)
      .meta(
        d(
          "embedded broker's listener port. A port in use stops the start with `CT_BROKER_PORT` naming this setting",
        ),
      ),
    tls: tlsSchema
      .optional()
      .meta(d("optional MQTT over TLS listener (embedded): `{ port, certFile, keyFile }`")),
    url: z
      .string()
      .optional()
      .meta(d("external broker, `mqtt://` or `mqtts://` (required when `mode: external`)")),
    username: z.string().optional().meta(d("the gateway's account on the external broker")),
    password: z.string().optional().meta(d("its password")),
    passwordFile: z
      .string()
      .min(1)
      .optional()
      .meta(d("a file whose first line is the password, to keep the secret out of the configuration")),
    persistentSession: z
      .boolean()
      .default(true)
      .meta(
        d(
          "keep the gateway's session on the broker while it is down (`clean: false`), so agents' QoS 1 messages wait for it. Turn off only for throwaway gateways on a shared broker",
        ),
      ),
    subscribeSites: z
      .array(z.union([segmentId, z.literal("+")]))
      .min(1)
      .default(["+"])
      .meta(
        d("sites whose agent, movement and eligibility topics the gateway subscribes to; `+` is every site"),
      ),
    credentialsFile: z
      .string()
      .default("./data/credentials.json")
      .meta(d("device and service accounts (scrypt hashes), written by `coldtrace-gateway credentials add`")),
    drainTimeoutMs: z
      .number()
      .int()
      .min(100)
      .default(10_000)
      .meta(
        d(
          "disconnect a subscriber whose socket has not drained for this long, so a frozen client cannot stall delivery to the others (aedes `drainTimeout`)",
        ),
      ),
    queueLimit: z
      .number()
      .int()
      .min(1)
      .default(42)
      .meta(d("messages queued per client before its session is set up (aedes `queueLimit`)")),
    maxQueuedMessages: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .meta(
        d(
          "QoS 1 messages the embedded broker holds per offline persistent (`clean: false`) client, such as a planner or monitor that went away; newer ones are dropped, as Mosquitto's `max_queued_messages`. See [Offline queues](#offline-queues)",
        ),
      ),
    maxQueuedBytes: z
      .number()
      .int()
      .min(0)
      .default(16 * 1024 * 1024)
      .meta(
        d(
          "payload bytes held per offline persistent client (16 MiB); `0` = no byte bound. Embedded mode only",
        ),
      ),
    concurrency: z
      .number()
      .int()
      .min(1)
      .default(100)
      .meta(d("messages the embedded broker delivers at once (aedes `concurrency`)")),
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
    records: z
      .discriminatedUnion("backend", [sqliteRecords, postgresRecords])
      .default({ backend: "sqlite", path: "./data/coldtrace.db" })
      .meta(
        d(
          "units, probes, agents, alarms, excursions, gaps, lots, the event outbox: `sqlite` (`path`) or `postgres` (`url`)",
        ),
      ),
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
      .default({ backend: "sqlite" })
      .meta(
        d(
          "readings in the records database (`sqlite` or `postgres`, the same backend as records), or `{ backend: influx, url, database, retentionPolicy? }` for InfluxDB 1.x (dedupe ledger in the records database). See [storage](storage.md)",
        ),
      ),
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
    batchMaxDelayMs: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(0)
      .meta(
        d(
          "extra wait to coalesce telemetry when ingest is idle. With 0, group commit only: what arrives while one batch is stored becomes the next batch, so batches grow with load without adding latency",
        ),
      ),
    batchMaxReadings: z.number().int().min(1).default(5000).meta(d("… or until this many readings wait")),
    maxPendingReadings: z
      .number()
      .int()
      .min(100)
      .default(100_000)
      .meta(
        d(
          "above this, the gateway stops reading from its MQTT connection until the store catches up (TCP backpressure; memory stays bounded)",
        ),
      ),
  })
  .strict();

export const engineSchema = z
  .object({
    latenessWindowHours: z
      .number()
      .min(1)
      .max(24 * 30)
      .default(48)
      .meta(
        d(
          'how late a reading may be and still be evaluated. Older ones are stored but set aside: a warn `readings older than the lateness window set aside` (at most once a minute per unit) and `coldtrace_engine_readings_set_aside_total{reason="too_late"}`',
        ),
      ),
    maxRetainedPerUnit: z
      .number()
      .int()
      .min(2048)
      .max(10_000_000)
      .default(50_000)
      .meta(
        d(
          "memory bound per unit besides the window (a unit reporting every second keeps less than the window)",
        ),
      ),
    maxClockSkewMinutes: z
      .number()
      .min(1)
      .max(24 * 60)
      .default(15)
      .meta(
        d(
          'readings dated further ahead of the gateway\'s clock are an agent clock error: set aside (`reason="future"`) and warned about, never evaluated',
        ),
      ),
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
    enabled: z.boolean().default(true).meta(d("serve the REST API")),
    host: z.string().default("0.0.0.0").meta(d("listener address")),
    port: port.default(8080).meta(d("listener port")),
    tokens: z
      .array(apiTokenSchema)
      .default([])
      .meta(
        d(
          '`{ name, hash: "sha256:<hex>" }` per API client; `coldtrace-gateway tokens create --name qa-console` prints a token and its line. See [API](api.md)',
        ),
      ),
  })
  .strict();

/** The quarantine policy (docs/qa/quarantine.md): what happens to a lot an excursion or gap touched. */
export const quarantinePolicy = z
  .object({
    quarantineOnActionExcursion: z
      .boolean()
      .default(true)
      .meta(d("action-level excursion: quarantine (`false`: flag for QA review)")),
    quarantineOnAlertExcursion: z
      .boolean()
      .default(false)
      .meta(d("alert-level excursion only: flag (`true`: quarantine)")),
    quarantineOnBudgetExceeded: z
      .boolean()
      .default(true)
      .meta(d("the product's stability budget is used up on a side")),
    quarantineOnFreeze: z
      .boolean()
      .default(true)
      .meta(d("a do-not-freeze product reached `freezeThresholdC`")),
    freezeThresholdC: z.number().default(0).meta(d("°C")),
    quarantineOnAbsoluteLimit: z.boolean().default(true).meta(d("beyond the product's absolute limits")),
    quarantineOnRecordingGap: z
      .boolean()
      .default(true)
      .meta(d("a recording gap (exposure unknown) while the lot was inside")),
    flagOtherwise: z
      .boolean()
      .default(true)
      .meta(d("touched, no rule fired: flag for QA review (`false`: nothing)")),
  })
  .strict();
export type QuarantinePolicy = z.output<typeof quarantinePolicy>;
export type QuarantinePolicyInput = z.input<typeof quarantinePolicy>;

export const lotsSchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .meta(d("run the lots module; `false`: no lots routes, movements are ignored")),
    policy: quarantinePolicy
      .default(() => quarantinePolicy.parse({}))
      .meta(
        d(
          'the quarantine policy (fields below); unknown keys and wrong types are refused with their path, e.g. `lots.policy.quarantineOnActionExcursion: expected boolean, got "yes"`',
        ),
      ),
    expirySweepMs: z
      .number()
      .int()
      .min(1000)
      .max(24 * 60 * MIN)
      .default(MIN)
      .meta(
        d(
          "how often lots that expired since the last sweep (and still have stock) are published as ineligible; the first sweep runs at start. 1 s … 24 h",
        ),
      ),
    outboxRetentionMs: z
      .number()
      .int()
      .min(MIN)
      .optional()
      .meta(d("deprecated: use `outbox.retentionMs` (still read when that is not set)")),
  })
  .strict();

export const outboxSchema = z
  .object({
    retentionMs: z
      .number()
      .int()
      .min(MIN)
      .default(7 * 24 * 60 * MIN)
      .meta(d("sent rows of the event outbox older than this are deleted (7 days); unsent rows never are")),
    pruneIntervalMs: z
      .number()
      .int()
      .min(1000)
      .max(24 * 60 * MIN)
      .default(10 * MIN)
      .meta(d("how often sent rows past the retention are pruned; the first prune runs at start")),
  })
  .strict();

const byKind = z
  .object(
    Object.fromEntries(unitKind.options.map((k) => [k, unitProfileOverride.omit({ kind: true }).optional()])),
  )
  .strict() as z.ZodType<
  Partial<Record<(typeof unitKind.options)[number], z.input<typeof unitProfileOverride>>>
>;

/**
 * Profiles checked at load, not when a unit registers: each `byKind` entry over its kind's
 * defaults; each `byUnit` entry over its `kind`'s (defaults ← byKind), or — without `kind` —
 * over every kind's, since the unit's kind is known only from its agent's birth.
 */
export const profilesSchema = z
  .object({
    byKind: byKind
      .default({})
      .meta(d("partial profile overrides per unit kind (`fridge`, `freezer`, `room`, `transit_box`)")),
    byUnit: z
      .record(segmentId, unitProfileOverride)
      .default({})
      .meta(
        d(
          "partial overrides per unit id, over `byKind`; `kind` (optional) names the unit's kind, so the override is checked for that kind only",
        ),
      ),
  })
  .strict()
  .superRefine((p, ctx) => {
    const check = (path: (string | number)[], profile: unknown, note = "") => {
      const r = unitProfileSchema.safeParse(profile);
      if (r.success) return true;
      for (const issue of r.error.issues)
        ctx.addIssue({ code: "custom", path: [...path, ...issue.path], message: `${issue.message}${note}` });
      return false;
    };
    const merged = (kind: (typeof unitKind.options)[number], ...overrides: unknown[]) =>
      Object.assign(structuredClone(defaultProfiles[kind]), ...overrides.map((o) => o ?? {}), { kind });
    const kinds = p.byKind as Partial<Record<(typeof unitKind.options)[number], unknown>>;
    for (const kind of unitKind.options) {
      if (kinds[kind] !== undefined) check(["byKind", kind], merged(kind, kinds[kind]));
    }
    for (const [unitId, o] of Object.entries(p.byUnit)) {
      const ok = (kind: (typeof unitKind.options)[number], note = "") =>
        check(["byUnit", unitId], merged(kind, kinds[kind], o), note);
      if (o.kind) ok(o.kind);
      else
        for (const kind of unitKind.options)
          if (!ok(kind, ` (for a ${kind} unit; add \`kind\` if this unit is another kind)`)) break;
    }
  });

export const gatewayConfigSchema = z
  .object({
    gatewayId: segmentId
      .default("gw-1")
      .meta(
        d("id in `ct/v1/_gateway/{gatewayId}/state` and the MQTT client id `coldtrace-gateway-{gatewayId}`"),
      ),
    log: z
      .object({
        level: z
          .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
          .default("info")
          .meta(d("pino level: `fatal` … `trace`, `silent`")),
      })
      .strict()
      .default({ level: "info" }),
    broker: brokerSchema.default(brokerSchema.parse({})),
    storage: storageSchema.default(storageSchema.parse({})),
    ingest: ingestSchema.default(ingestSchema.parse({})),
    /** The excursion engine's memory and lateness bounds (profiles are below). */
    engine: engineSchema.default(engineSchema.parse({})),
    api: apiSchema.default(apiSchema.parse({})),
    /** Excursion profile overrides per unit kind and per unit, checked at load. */
    profiles: profilesSchema.default({ byUnit: {}, byKind: {} }),
    /** The lots module: quarantine policy and housekeeping timers. */
    lots: lotsSchema.default(() => lotsSchema.parse({})),
    /** The web console: sites' names and time zones, language, live stream timers. */
    console: consoleSchema.default(() => consoleSchema.parse({})),
    /** The transactional event outbox the gateway keeps: how long sent rows stay. */
    outbox: outboxSchema.default(() => outboxSchema.parse({})),
  })
  .strict();

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;
