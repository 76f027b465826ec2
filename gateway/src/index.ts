/**
 * @coldtrace/gateway — the gateway process: broker (embedded aedes or external), device
 * credentials and ACLs, ingest, storage, the excursion engine, the lots module, the REST API.
 * `startGateway` wires everything; the rest is exported for other modules and tests.
 */

export { generateToken, hashToken } from "./api/auth.ts";
export { type ApiDeps, buildApi } from "./api/server.ts";
export { allowedSubscriptions, filterWithin, mayPublish, maySubscribe, mosquittoAcl } from "./broker/acl.ts";
export { connectGateway, type GatewayConnection } from "./broker/connection.ts";
export { CredentialStore, type Identity, type Role } from "./broker/credentials.ts";
export { type EmbeddedBroker, startEmbeddedBroker } from "./broker/embedded.ts";
export { loadGatewayConfig, parseGatewayConfig } from "./config/load.ts";
export type { GatewayConfig, GatewayConfigInput } from "./config/schema.ts";
export { Ingest, type IngestDeps, type IngestOptions } from "./ingest/ingest.ts";
export { IngestMetrics } from "./ingest/metrics.ts";
export type {
  EngineOutput,
  EnginePort,
  EventKind,
  EventSink,
  IngestListeners,
  UnitRegistration,
} from "./ingest/ports.ts";
export {
  createLotService,
  type LotService,
  type LotServiceDeps,
  lotsPlugin,
  parsePolicy,
  type QuarantinePolicy,
} from "./lots/index.ts";
export { configuredUnitProfile, createEngine } from "./runtime/engine.ts";
export {
  type ExtensionContext,
  type GatewayExtension,
  type GatewayExtensionFactory,
  type GatewayRuntime,
  type StartGatewayOptions,
  startGateway,
} from "./runtime/gateway.ts";
export { type LotsExtensionOptions, lotsExtension } from "./runtime/lots.ts";
export { type OpenStorage, openStorage } from "./runtime/storage.ts";
