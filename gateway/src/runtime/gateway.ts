/**
 * The gateway process, wired: storage, the broker (embedded aedes or external), the gateway's
 * MQTT session, ingest with the excursion engine, the engine's clock tick, and the REST API.
 *
 *   startGateway(config)
 *     ├─ openStorage (records + readings); SQLite: WAL checkpoints on a worker thread
 *     ├─ extensions (lotsExtension by default when config.lots.enabled)
 *     ├─ embedded? startEmbeddedBroker (credentials file)  : external URL
 *     ├─ Ingest (engine, EventSink = MQTT QoS 1, or a wrapper such as the lots outbox)
 *     ├─ connectGateway → handleMessage → ingest   (same code path for both brokers; PUBACK once stored)
 *     ├─ extensions' onConnected(connection)        (the lots outbox dispatcher)
 *     ├─ tick every tickIntervalMs
 *     └─ buildApi (+ plugins of other modules) listening on api.port
 *
 * Hooks for the lots module: `listeners` (engine outputs, gaps, movements), `wrapSink` (replace
 * direct publishing with a transactional outbox), `apiPlugins` (its routes), `onConnected`
 * (the gateway's MQTT session, for its outbox dispatcher).
 *
 * Stop order: API, tick, ingest flush (queued work and its events), extensions' disconnect
 * hooks (outbox drain), MQTT session, embedded broker, extensions' stop, storage.
 */
import type { UnitKind } from "@coldtrace/protocol";
import type { FastifyInstance, FastifyPluginAsync } from "fastify";
import type { Logger } from "pino";
import { buildApi } from "../api/server.ts";
import { connectGateway, type GatewayConnection } from "../broker/connection.ts";
import { CredentialStore } from "../broker/credentials.ts";
import { type EmbeddedBroker, startEmbeddedBroker } from "../broker/embedded.ts";
import type { GatewayConfig } from "../config/schema.ts";
import type { ExcursionEngine } from "../excursions/engine.ts";
import { startWalCheckpointer } from "../ingest/checkpointer.ts";
import type { IngestDeps } from "../ingest/ingest.ts";
import { Ingest } from "../ingest/ingest.ts";
import { IngestMetrics } from "../ingest/metrics.ts";
import type { EnginePort, EventSink } from "../ingest/ports.ts";
import type { LotService } from "../lots/index.ts";
import { createEngine } from "./engine.ts";
import { lotsExtension } from "./lots.ts";
import type { OpenStorage } from "./storage.ts";
import { openStorage } from "./storage.ts";

/**
 * The WAL checkpointer's period: the WAL holds at most about this long of writes (a few MB at
 * 100,000 readings/s). A checkpoint with nothing to copy does no I/O.
 */
const WAL_CHECKPOINT_INTERVAL_MS = 50;

/** What another module (lots) adds to the gateway once storage is open. */
export interface GatewayExtension {
  listeners?: IngestDeps["listeners"];
  /** Wrap the MQTT event sink, e.g. with a transactional outbox. */
  wrapSink?: (sink: EventSink) => EventSink;
  /** fastify plugins registered under /api/v1 with token authentication. */
  apiPlugins?: readonly FastifyPluginAsync[];
  /**
   * Called once the gateway's MQTT session is up (e.g. to start an outbox dispatcher on
   * `connection.client`). The returned function runs on stop, after ingest has flushed and
   * before the session closes.
   */
  onConnected?: (
    connection: GatewayConnection,
  ) => undefined | (() => Promise<void>) | Promise<undefined | (() => Promise<void>)>;
  /** Called on stop, before storage closes. */
  stop?: () => Promise<void>;
}

/** What an extension gets once storage is open. */
export interface ExtensionContext {
  config: GatewayConfig;
  storage: OpenStorage;
  log: Logger;
  /** The gateway's clock (the `now` option, else Date.now). */
  now: () => number;
  /** Kind of a unit registered with the engine (agent births, or the records at start). */
  unitKind(unitId: string): UnitKind | undefined;
}

export type GatewayExtensionFactory = (ctx: ExtensionContext) => GatewayExtension | Promise<GatewayExtension>;

export interface StartGatewayOptions {
  config: GatewayConfig;
  log: Logger;
  /** The excursion engine (default: createEngine from the configured profiles). */
  engine?: EnginePort;
  /** Already-open storage (tests, bench); default: opened from config.storage. */
  storage?: OpenStorage;
  credentials?: CredentialStore;
  now?: () => number;
  tickIntervalMs?: number;
  listeners?: IngestDeps["listeners"];
  wrapSink?: (sink: EventSink) => EventSink;
  apiPlugins?: readonly FastifyPluginAsync[];
  /**
   * Modules that need the open storage (the lots module shares the records database):
   * called once storage is open, before the broker and ingest start.
   */
  extensions?: readonly GatewayExtensionFactory[];
  /**
   * Install the lots module (`lotsExtension()`) before `extensions`. Default:
   * `config.lots.enabled`. Pass false when `extensions` already holds a lotsExtension.
   */
  lots?: boolean;
}

export interface GatewayRuntime {
  config: GatewayConfig;
  brokerUrl: string;
  broker?: EmbeddedBroker;
  connection: GatewayConnection;
  ingest: Ingest;
  metrics: IngestMetrics;
  storage: OpenStorage;
  api?: FastifyInstance;
  apiUrl?: string;
  /** The lots service, when the gateway installed the lots module itself. */
  lots?: LotService;
  stop(): Promise<void>;
}

export async function startGateway(opts: StartGatewayOptions): Promise<GatewayRuntime> {
  const { config, log } = opts;
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        log.warn({ err }, "shutdown step failed");
      }
    }
  };
  try {
    const storage = opts.storage ?? (await openStorage(config.storage));
    if (!opts.storage) cleanups.push(() => storage.close());
    const records = config.storage.records;
    if (!opts.storage && records.backend === "sqlite" && records.path !== ":memory:") {
      // WAL checkpoints (and their fsync) on a worker thread, never inside ingest's COMMIT (p99 latency).
      const checkpointer = startWalCheckpointer(records.path, {
        intervalMs: WAL_CHECKPOINT_INTERVAL_MS,
        log,
        ...(storage.sqlite ? { writer: storage.sqlite } : {}),
      });
      cleanups.push(() => checkpointer.stop());
    }
    // `core`: the excursion engine behind the port, when it is ours (its stats go to /metrics).
    const base: EnginePort & { core?: ExcursionEngine } = opts.engine ?? createEngine(config, opts.now, log);
    // The runtime's unit directory: kinds as registered with the engine (births, known units).
    const unitKinds = new Map<string, UnitKind>();
    const engine: EnginePort = {
      registerUnit(u) {
        unitKinds.set(u.unitId, u.kind);
        base.registerUnit(u);
      },
      ingest: (readings) => base.ingest(readings),
      reportEvictedRange: (gap) => base.reportEvictedRange(gap),
      acknowledge: (alarmId, ack, at) => base.acknowledge(alarmId, ack, at),
      tick: (t) => base.tick(t),
    };
    const now = opts.now ?? Date.now;
    let lots: LotService | undefined;
    const factories = [
      ...((opts.lots ?? config.lots.enabled)
        ? [
            lotsExtension({
              onService: (s) => {
                lots = s;
              },
            }),
          ]
        : []),
      ...(opts.extensions ?? []),
    ];
    const extensions: GatewayExtension[] = [];
    for (const make of factories) {
      const ext = await make({ config, storage, log, now, unitKind: (id) => unitKinds.get(id) });
      extensions.push(ext);
      if (ext.stop) {
        const stopExt = ext.stop;
        cleanups.push(() => stopExt());
      }
    }
    const listeners = mergeListeners([opts.listeners, ...extensions.map((e) => e.listeners)]);
    const wrappers = [opts.wrapSink, ...extensions.map((e) => e.wrapSink)].filter(
      (w): w is (sink: EventSink) => EventSink => w !== undefined,
    );
    const apiPlugins = [...(opts.apiPlugins ?? []), ...extensions.flatMap((e) => e.apiPlugins ?? [])];

    let broker: EmbeddedBroker | undefined;
    let brokerUrl: string;
    let account: { username?: string | undefined; password?: string | undefined };
    if (config.broker.mode === "embedded") {
      const credentials = opts.credentials ?? (await CredentialStore.load(config.broker.credentialsFile));
      broker = await startEmbeddedBroker({
        host: config.broker.host,
        port: config.broker.port,
        tls: config.broker.tls,
        drainTimeoutMs: config.broker.drainTimeoutMs,
        queueLimit: config.broker.queueLimit,
        maxQueuedMessages: config.broker.maxQueuedMessages,
        maxQueuedBytes: config.broker.maxQueuedBytes,
        concurrency: config.broker.concurrency,
        credentials,
        log,
      });
      const b = broker;
      cleanups.push(() => b.close());
      brokerUrl = broker.url;
      account = broker.gatewayAccount;
    } else {
      brokerUrl = config.broker.url as string;
      account = { username: config.broker.username, password: config.broker.password };
    }

    const metrics = new IngestMetrics();
    let connection: GatewayConnection | undefined;
    const mqttSink: EventSink = {
      publish(kind, topic, payload) {
        if (!connection) return Promise.reject(new Error("not connected to the broker"));
        return connection.sink.publish(kind, topic, payload);
      },
    };
    const sink = wrappers.reduce<EventSink>((inner, wrap) => wrap(inner), mqttSink);
    const profiles = config.profiles;
    const ingest = new Ingest({
      readings: storage.readings,
      records: storage.records,
      engine,
      sink,
      metrics,
      log,
      options: config.ingest,
      ...(opts.now ? { now: opts.now } : {}),
      profileFor: (u) => profiles.byUnit[u.unitId] ?? profiles.byKind[u.kind],
      listeners,
    });
    await ingest.start();
    // Embedded broker: agents get their PUBACK only once ingest has committed their data.
    broker?.setHandoff(
      (topic, payload) => new Promise<void>((resolve) => ingest.accept(topic, payload, resolve)),
    );
    connection = await connectGateway({
      url: brokerUrl,
      gatewayId: config.gatewayId,
      username: account.username,
      password: account.password,
      log,
      ...(opts.now ? { now: opts.now } : {}),
      persistentSession: config.broker.persistentSession,
      sites: config.broker.subscribeSites,
      onMessage: (topic, payload, resume, stored) => ingest.handleMessage(topic, payload, resume, stored),
    });
    const conn = connection;
    cleanups.push(() => conn.close());
    for (const ext of extensions) {
      const off = await ext.onConnected?.(conn);
      if (off) cleanups.push(off);
    }
    // Flush queued readings and publish their events while the session is still up.
    cleanups.push(async () => {
      broker?.setHandoff(undefined); // from now on the broker acknowledges on receipt again
      await ingest.close();
    });

    const tickMs = opts.tickIntervalMs ?? 10_000;
    const tick = setInterval(() => {
      ingest.tick().catch((err: unknown) => log.error({ err }, "engine tick failed"));
    }, tickMs);
    tick.unref();
    cleanups.push(async () => clearInterval(tick));

    let api: FastifyInstance | undefined;
    let apiUrl: string | undefined;
    if (config.api.enabled) {
      api = await buildApi({
        records: storage.records,
        readings: storage.readings,
        tokens: config.api.tokens,
        acknowledge: (alarmId, ack) => ingest.acknowledge(alarmId, ack),
        metricsText: () => {
          const stats = base.core?.stats(); // walks every unit: once per scrape
          return metrics.render(
            {
              coldtrace_process_resident_memory_bytes: process.memoryUsage().rss,
              coldtrace_broker_connected_clients: broker?.aedes.connectedClients ?? 0,
              ...(stats ? { coldtrace_engine_retained_readings: stats.retained } : {}),
            },
            {
              coldtrace_broker_offline_queue_dropped_total: broker?.queues.droppedTotal() ?? 0,
              ...(stats
                ? {
                    'coldtrace_engine_readings_set_aside_total{reason="too_late"}': stats.tooLate,
                    'coldtrace_engine_readings_set_aside_total{reason="future"}': stats.future,
                  }
                : {}),
            },
          );
        },
        log,
        plugins: apiPlugins,
      });
      const a = api;
      cleanups.push(() => a.close());
      apiUrl = await api.listen({ host: config.api.host, port: config.api.port });
      log.info({ url: apiUrl }, "api listening");
    }

    return {
      config,
      brokerUrl,
      ...(broker ? { broker } : {}),
      connection,
      ingest,
      metrics,
      storage,
      ...(api ? { api } : {}),
      ...(apiUrl ? { apiUrl } : {}),
      ...(lots ? { lots } : {}),
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Call every module's listener in turn (ordered as given). */
function mergeListeners(
  all: readonly (IngestDeps["listeners"] | undefined)[],
): NonNullable<IngestDeps["listeners"]> {
  const list = all.filter((l): l is NonNullable<IngestDeps["listeners"]> => l !== undefined);
  return {
    async onEngineOutputs(outputs) {
      for (const l of list) await l.onEngineOutputs?.(outputs);
    },
    async onGap(gap) {
      for (const l of list) await l.onGap?.(gap);
    },
    async onMovement(movement) {
      for (const l of list) await l.onMovement?.(movement);
    },
  };
}
