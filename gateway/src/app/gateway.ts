/**
 * The gateway host: storage, the unit directory, the outbox, the broker (embedded aedes or
 * external), the gateway's MQTT session, ingest, the engine's clock tick and the REST API,
 * with the extensions it is given (extension/extension.ts) plugged in. It knows no module by
 * name: the composition root (cli/builtins.ts) chooses them.
 *
 *   startGateway({ config, extensions })
 *     ├─ openStorage (records + readings); SQLite: WAL checkpoints on a worker thread
 *     ├─ UnitRegistry (profiles from the extension that resolves them), EventOutbox (init)
 *     ├─ each factory(ctx), then each start()           (in the order given)
 *     ├─ embedded? startEmbeddedBroker (credentials file)  : external URL
 *     ├─ Ingest (the extension's engine, EventSink = MQTT QoS 1, listeners → extensions)
 *     ├─ connectGateway → agents' messages to ingest, extensions' subscriptions to them
 *     │                   (same code path for both brokers; PUBACK once stored)
 *     ├─ outbox dispatcher on the session (and pruning of sent rows); extensions' onConnected(session)
 *     ├─ tick every tickIntervalMs
 *     └─ buildApi (+ the extensions' routes under /api/v1, their pages at /) listening on api.port
 *
 * Stop order: API, tick, ingest flush (queued work and its events), extensions' onConnected
 * cleanups, outbox drain (up to 5 s), MQTT session, embedded broker, extensions' stop (in
 * reverse), storage.
 */
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { buildApi } from "../api/server.ts";
import { filterWithin } from "../broker/acl.ts";
import { connectGateway, type GatewayConnection } from "../broker/connection.ts";
import { CredentialStore } from "../broker/credentials.ts";
import { type EmbeddedBroker, startEmbeddedBroker } from "../broker/embedded.ts";
import { brokerPassword } from "../config/load.ts";
import type { GatewayConfig } from "../config/schema.ts";
import type { Extension, ExtensionContext, ExtensionFactory } from "../extension/extension.ts";
import { Ingest } from "../ingest/ingest.ts";
import { IngestMetrics } from "../ingest/metrics.ts";
import type { EnginePort, IngestListeners } from "../ingest/ports.ts";
import { type Clock, systemClock } from "../kernel/clock.ts";
import type { EventSink } from "../kernel/events.ts";
import { type UnitDirectory, UnitRegistry } from "../kernel/units.ts";
import { createEventOutbox, type EventOutbox } from "../outbox/index.ts";
import { startWalCheckpointer } from "../storage/sql/checkpointer.ts";
import { type OpenStorage, openStorage } from "./storage.ts";

/**
 * The WAL checkpointer's period: the WAL holds at most about this long of writes (a few MB at
 * 100,000 readings/s). A checkpoint with nothing to copy does no I/O.
 */
const WAL_CHECKPOINT_INTERVAL_MS = 50;
/** How long stop waits for unsent outbox rows to reach the broker before closing the session. */
const STOP_DRAIN_MS = 5000;

export interface StartGatewayOptions {
  config: GatewayConfig;
  log: Logger;
  /** The modules to run, in order (cli/builtins.ts: `builtinExtensions(config)`). */
  extensions?: readonly ExtensionFactory[];
  /** Already-open storage (tests, bench); default: opened from config.storage. */
  storage?: OpenStorage;
  credentials?: CredentialStore;
  /** Default: wall-clock time. */
  clock?: Clock;
  tickIntervalMs?: number;
}

export interface GatewayRuntime {
  config: GatewayConfig;
  brokerUrl: string;
  broker?: EmbeddedBroker;
  connection: GatewayConnection;
  ingest: Ingest;
  metrics: IngestMetrics;
  storage: OpenStorage;
  units: UnitDirectory;
  outbox: EventOutbox;
  /** The running extensions by name. */
  extensions: ReadonlyMap<string, Extension>;
  api?: FastifyInstance;
  apiUrl?: string;
  stop(): Promise<void>;
}

/** Readings are stored and not evaluated when no extension provides an engine. */
const noEngine: EnginePort = {
  registerUnit() {},
  ingest: () => [],
  reportEvictedRange: () => [],
  acknowledge: () => [],
  tick: () => [],
};

/** The one extension offering `hook`, if any; two are a wiring mistake. */
function provider<K extends "engine" | "unitProfile">(
  extensions: readonly Extension[],
  hook: K,
): Extension | undefined {
  const offering = extensions.filter((e) => e[hook] !== undefined);
  if (offering.length > 1) {
    throw new Error(`extensions ${offering.map((e) => e.name).join(", ")} all provide ${hook}; only one may`);
  }
  return offering[0];
}

export async function startGateway(opts: StartGatewayOptions): Promise<GatewayRuntime> {
  const { config, log } = opts;
  const notice = (ext: Extension, hook: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      log.error({ err, extension: ext.name, hook }, "extension notice failed");
    }
  };
  const clock = opts.clock ?? systemClock;
  const now = () => clock.now();
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

    let profiles: Extension | undefined;
    const units = new UnitRegistry((unitId, kind) => profiles?.unitProfile?.(unitId, kind));
    const outbox = createEventOutbox(storage.sql, clock);
    await outbox.init();
    const metrics = new IngestMetrics();
    const ctx: ExtensionContext = {
      config,
      log,
      clock,
      units,
      readings: storage.readings,
      records: storage.records,
      sql: storage.sql,
      outbox,
      ingestFigures: () => metrics.counters(),
    };
    const extensions = (opts.extensions ?? []).map((make) => make(ctx));
    const byName = new Map<string, Extension>();
    for (const ext of extensions) {
      if (byName.has(ext.name)) throw new Error(`two extensions are named "${ext.name}"`);
      byName.set(ext.name, ext);
    }
    profiles = provider(extensions, "unitProfile");
    const base = provider(extensions, "engine")?.engine ?? noEngine;
    if (base === noEngine) log.warn({}, "no extension evaluates readings: they are stored, not evaluated");
    for (const ext of extensions) {
      await ext.start?.();
      if (ext.stop) {
        const stopExt = ext.stop.bind(ext);
        cleanups.push(() => stopExt());
      }
    }
    // Every unit the engine learns of (births, the records at start) is in the directory first.
    const engine: EnginePort = {
      registerUnit(u) {
        units.register(u);
        base.registerUnit(u);
      },
      ingest: (readings) => base.ingest(readings),
      reportEvictedRange: (gap) => base.reportEvictedRange(gap),
      acknowledge: (alarmId, ack, at) => base.acknowledge(alarmId, ack, at),
      tick: (t) => base.tick(t),
    };
    const listeners: IngestListeners = {
      async onEngineOutputs(outputs, tx) {
        for (const ext of extensions) await ext.onEngineOutputs?.(outputs, tx ?? storage.sql);
      },
      async onMovement(movement) {
        for (const ext of extensions) await ext.onMovement?.(movement, storage.sql);
      },
      // Synchronous notices: one failing extension must not keep the others from hearing.
      onReadingsStored(readings) {
        for (const ext of extensions) notice(ext, "onReadingsStored", () => ext.onReadingsStored?.(readings));
      },
      onAgent(agent) {
        for (const ext of extensions) notice(ext, "onAgentChanged", () => ext.onAgentChanged?.(agent));
      },
    };
    const subscriptions = extensions.flatMap((e) => e.subscriptions ?? []);

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
      account = { username: config.broker.username, password: brokerPassword(config.broker) };
    }

    let connection: GatewayConnection | undefined;
    const sink: EventSink = {
      publish(kind, topic, payload) {
        if (!connection) return Promise.reject(new Error("not connected to the broker"));
        return connection.sink.publish(kind, topic, payload);
      },
    };
    const ingest = new Ingest({
      readings: storage.readings,
      records: storage.records,
      engine,
      sink,
      metrics,
      log,
      options: config.ingest,
      now,
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
      now,
      persistentSession: config.broker.persistentSession,
      sites: config.broker.subscribeSites,
      // Each filter once: two modules may listen to the same one (lots and the console both
      // follow retained eligibility), and a broker grants a repeated filter only once.
      extraFilters: [...new Set(subscriptions.map((s) => s.filter))],
      onMessage(topic, payload, resume, stored) {
        // Overlapping subscriptions get one copy from the broker [MQTT-3.3.5-1]: hand it to every
        // extension whose filter matches, and acknowledge once they have all settled.
        const subs = subscriptions.filter((s) => filterWithin(topic, s.filter));
        if (subs.length === 0) return ingest.handleMessage(topic, payload, resume, stored);
        resume();
        void Promise.allSettled(
          subs.map((sub) =>
            sub.onMessage(topic, payload).catch((err: unknown) => {
              log.error({ err, topic }, "extension message handling failed");
            }),
          ),
        ).then(stored);
      },
    });
    const conn = connection;
    cleanups.push(() => conn.close());
    const dispatcher = outbox.startDispatcher(conn.client, log);
    // Sent rows past outbox.retentionMs are pruned here, for every module's events.
    const prune = async () => {
      try {
        const pruned = await outbox.prune(clock.now() - config.outbox.retentionMs);
        if (pruned > 0) log.debug({ pruned }, "sent outbox rows pruned");
      } catch (err) {
        log.error({ err }, "outbox prune failed");
      }
    };
    let pruning = prune();
    const pruner = setInterval(() => {
      pruning = prune();
    }, config.outbox.pruneIntervalMs);
    pruner.unref();
    cleanups.push(async () => {
      clearInterval(pruner);
      await pruning;
    });
    cleanups.push(async () => {
      // Give committed events a moment to reach the broker; what is left goes after restart.
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([
        dispatcher.drained(),
        new Promise<void>((resolve) => {
          timeout = setTimeout(resolve, STOP_DRAIN_MS);
          timeout.unref();
        }),
      ]);
      clearTimeout(timeout);
      await dispatcher.stop();
    });
    for (const ext of extensions) {
      const off = await ext.onConnected?.({ client: conn.client, gatewayId: config.gatewayId });
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
          const gauges: Record<string, number> = {
            coldtrace_process_resident_memory_bytes: process.memoryUsage().rss,
            coldtrace_broker_connected_clients: broker?.aedes.connectedClients ?? 0,
          };
          const counters: Record<string, number> = {
            coldtrace_broker_offline_queue_dropped_total: broker?.queues.droppedTotal() ?? 0,
          };
          for (const ext of extensions) {
            const m = ext.metrics?.();
            Object.assign(gauges, m?.gauges);
            Object.assign(counters, m?.counters);
          }
          return metrics.render(gauges, counters);
        },
        log,
        plugins: extensions.flatMap((e) => (e.routes ? [e.routes] : [])),
        sitePlugins: extensions.flatMap((e) => (e.pages ? [e.pages] : [])),
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
      units,
      outbox,
      extensions: byName,
      ...(api ? { api } : {}),
      ...(apiUrl ? { apiUrl } : {}),
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
