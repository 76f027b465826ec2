/**
 * The extension contract: everything a gateway module (excursions, lots, and next qa, console,
 * notify, fleet) may use, and everything it may add, in this one file — as zigbee2mqtt keeps
 * lib/extension/extension.ts. A module exports an `ExtensionFactory`; the composition root
 * (cli/builtins.ts) picks the factories; `startGateway` (app/gateway.ts) runs them in order and
 * never knows a module by name. Modules import this file, the kernel and the seams it names
 * (storage, outbox, ingest's engine port), never app/ or cli/.
 *
 *   factory(ctx)         store dependencies only ("should do nothing", zigbee2mqtt)
 *   start()              in order, once storage is open, before ingest and the broker start:
 *                        migrate your tables, load state, start timers
 *   onEngineOutputs()    every engine output batch, inside the batch's records transaction
 *   onMovement()         every movement (ct/v1/{site}/movements), in arrival order
 *   onMessage of your subscriptions   (subscribed with the gateway's session, PUBACK after it)
 *   onConnected(session) once the gateway's MQTT session is up
 *   routes               fastify plugin under /api/v1, behind token authentication
 *   pages                fastify plugin at the root, without authentication (the console's site)
 *   onReadingsStored()   readings just stored; onAgentChanged() an agent's record just stored
 *   stop()               in reverse order, after ingest has flushed and the outbox drained,
 *                        before storage closes
 *
 * Events: publish nothing yourself. Enqueue contract events in the transactional outbox
 * (`ctx.outbox.enqueue(tx, …)`) inside the transaction of the change they announce; the
 * gateway runs the one dispatcher (QoS 1, commit order, resend after restarts).
 */
import type { Movement, UnitKind } from "@coldtrace/protocol";
import type { FastifyPluginAsync } from "fastify";
import type { MqttClient } from "mqtt";
import type { Logger } from "pino";
import type { GatewayConfig } from "../config/schema.ts";
import type { EnginePort } from "../ingest/ports.ts";
import type { Clock } from "../kernel/clock.ts";
import type { DomainEvent } from "../kernel/events.ts";
import type { UnitProfile } from "../kernel/profiles.ts";
import type { UnitDirectory } from "../kernel/units.ts";
import type { Outbox } from "../outbox/index.ts";
import type { SqlDatabase, SqlExecutor } from "../storage/sql/database.ts";
import type { AgentRecord, ReadingStore, RecordStore, StoredReading } from "../storage/types.ts";

/** What every extension gets from the gateway (read-only; valid from the factory call on). */
export interface ExtensionContext {
  /** The validated configuration: read your own section (`lots`, `engine` + `profiles` …). */
  readonly config: Readonly<GatewayConfig>;
  /** The gateway's root logger: make your own child, `log.child({ component: "lots" })`. */
  readonly log: Logger;
  readonly clock: Clock;
  /** Which units exist, of what kind, with which probes and profile. */
  readonly units: UnitDirectory;
  readonly readings: ReadingStore;
  readonly records: RecordStore;
  /** The records database through the SQL seam: migrate your tables, run your statements. */
  readonly sql: SqlDatabase;
  /** The transactional outbox: enqueue inside your transaction, `notify()` after it commits. */
  readonly outbox: Outbox;
  /**
   * The gateway's ingest figures now, by name (messagesReceived, readingsStored, rejected,
   * pendingReadings …: the counters of /metrics), e.g. for status series. Read-only.
   */
  readonly ingestFigures?: () => Readonly<Record<string, number>>;
}

/** The gateway's own MQTT session (handed to `onConnected`). */
export interface GatewaySession {
  /** mqtt.js client of the session; use its documented API (QoS 1 publishes are acknowledged). */
  readonly client: MqttClient;
  readonly gatewayId: string;
}

/** A topic filter an extension listens to on the gateway's session. */
export interface Subscription {
  /** MQTT topic filter (`+`, `#`), e.g. ct/v1/+/_fleet/+/config-ack. Subscribed at QoS 1. */
  readonly filter: string;
  /**
   * One message of the filter, in arrival order. Its PUBACK goes out once this settles; a
   * throw is logged and the message acknowledged (redelivery would not make it valid).
   */
  onMessage(topic: string, payload: Buffer): Promise<void>;
}

/** Figures for /metrics (Prometheus text): names with their labels, values. */
export interface MetricsSample {
  gauges?: Record<string, number>;
  counters?: Record<string, number>;
}

export interface Extension {
  /** Unique among the gateway's extensions, e.g. "lots"; names the extension in logs and lookups. */
  readonly name: string;
  start?(): Promise<void>;
  stop?(): Promise<void>;
  /**
   * Routes, registered under /api/v1 behind token authentication (read after `start()`). Every
   * route declares its request and response schemas, so it validates and shows in /openapi.json.
   */
  readonly routes?: FastifyPluginAsync;
  /**
   * React to one batch of engine outputs (alarms, excursions, gaps). `tx` is the executor of
   * the records transaction the batch's records commit in: write through it (and enqueue
   * outbox rows on it), never open another transaction here. A throw rolls the batch back.
   * (Until ingest commits its batches in one transaction, #14, `tx` is the database itself.)
   */
  onEngineOutputs?(outputs: readonly DomainEvent[], tx: SqlExecutor): Promise<void>;
  /**
   * Pages served at the root without token authentication: the web console's static files.
   * Records never go out this way; pages read them through `routes` with a token.
   */
  readonly pages?: FastifyPluginAsync;
  /**
   * Readings just appended to the reading store (only the new ones; duplicates are not here),
   * e.g. for a live view. Synchronous: ingest does not wait, and a throw is logged and ignored.
   */
  onReadingsStored?(readings: readonly StoredReading[]): void;
  /** An agent's record just stored after its birth or a state message; as `onReadingsStored`. */
  onAgentChanged?(agent: AgentRecord): void;
  /** React to one movement from the ERP or the planner; `tx` as for `onEngineOutputs`. */
  onMovement?(movement: Movement, tx: SqlExecutor): Promise<void>;
  /** Topic filters of your own on the gateway's session (agents' messages go to ingest). */
  readonly subscriptions?: readonly Subscription[];
  /**
   * The MQTT session is up. A returned function runs on stop, after ingest has flushed and
   * before the session closes.
   */
  onConnected?(session: GatewaySession): Promise<undefined | (() => Promise<void>)>;
  /** Figures added to every /metrics scrape. */
  metrics?(): MetricsSample;
  /**
   * The excursion engine behind ingest's port (the excursions module). At most one extension
   * provides it; without one, readings are stored but not evaluated.
   */
  readonly engine?: EnginePort;
  /**
   * The resolved profile of a unit, behind `UnitDirectory.profile` (the excursions module). At
   * most one extension provides it. Throws when the unit's configured profile is invalid.
   */
  unitProfile?(unitId: string, kind: UnitKind): UnitProfile;
}

export type ExtensionFactory = (ctx: ExtensionContext) => Extension;
