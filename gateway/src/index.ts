/**
 * @coldtrace/gateway — the gateway process: broker (embedded aedes or external), device
 * credentials and ACLs, ingest, storage, and its modules (excursions, lots, notify) behind one
 * extension contract. `startGateway` (app/) hosts the extensions it is given;
 * `builtinExtensions` (cli/) is the composition root's choice. The rest is exported for other
 * modules and tests.
 */

export { generateToken, hashToken } from "./api/auth.ts";
export { type ApiDeps, buildApi } from "./api/server.ts";
export { type GatewayRuntime, type StartGatewayOptions, startGateway } from "./app/gateway.ts";
export { type OpenStorage, openStorage } from "./app/storage.ts";
export { allowedSubscriptions, filterWithin, mayPublish, maySubscribe, mosquittoAcl } from "./broker/acl.ts";
export { connectGateway, type GatewayConnection } from "./broker/connection.ts";
export { CredentialStore, type Identity, type Role } from "./broker/credentials.ts";
export { type EmbeddedBroker, startEmbeddedBroker } from "./broker/embedded.ts";
export { builtinExtensions } from "./cli/builtins.ts";
export { brokerPassword, loadGatewayConfig, parseGatewayConfig } from "./config/load.ts";
export type { GatewayConfig, GatewayConfigInput } from "./config/schema.ts";
export { configuredUnitProfile, createEngine, excursionsExtension } from "./excursions/module.ts";
export type {
  Extension,
  ExtensionContext,
  ExtensionFactory,
  GatewaySession,
  MetricsSample,
  Subscription,
} from "./extension/extension.ts";
export { type GrafanaExtensionOptions, grafanaExtension } from "./grafana/module.ts";
export { Ingest, type IngestDeps, type IngestOptions } from "./ingest/ingest.ts";
export { IngestMetrics } from "./ingest/metrics.ts";
export type { EnginePort, IngestListeners, UnitRegistration } from "./ingest/ports.ts";
export { type Clock, systemClock } from "./kernel/clock.ts";
export type { DomainEvent, EventKind, EventSink, GapRecordRow } from "./kernel/events.ts";
export { defaultProfiles, profileFor, type UnitProfile, unitProfileSchema } from "./kernel/profiles.ts";
export { type ProfileResolver, type UnitDirectory, type UnitEntry, UnitRegistry } from "./kernel/units.ts";
export {
  createLotService,
  type LotService,
  type LotServiceDeps,
  type LotsExtension,
  type LotsExtensionOptions,
  lotsExtension,
  lotsPlugin,
  parsePolicy,
  type QuarantinePolicy,
} from "./lots/index.ts";
export {
  createNotificationStore,
  type NotificationRecord,
  type NotificationStore,
  type NotifyExtension,
  notifyExtension,
  type StoredNotification,
} from "./notify/index.ts";
export { createEventOutbox, type EventOutbox, type Outbox } from "./outbox/index.ts";
export type { RecordDb, SqlDatabase, SqlExecutor } from "./storage/sql/database.ts";
