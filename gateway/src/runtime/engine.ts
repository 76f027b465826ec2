/**
 * Adapter from the excursion engine (gateway/src/excursions) to the ingest `EnginePort`.
 * Until the engine lands, a pass-through engine that raises nothing.
 */
import type { GatewayConfig } from "../config/schema.ts";
import type { EnginePort } from "../ingest/ports.ts";

export function createEngine(_config: GatewayConfig): EnginePort {
  return {
    registerUnit() {},
    ingest: () => [],
    reportEvictedRange: () => [],
    acknowledge: () => [],
    tick: () => [],
  };
}
