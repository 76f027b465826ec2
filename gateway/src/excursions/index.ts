/**
 * Excursions: the event-time engine (engine.ts), exposure metrics with MKT (metrics.ts), pure
 * domain logic with no I/O, and the module that runs them inside the gateway (module.ts:
 * profile resolution, ingest's engine port, /metrics figures). Unit profiles are kernel
 * vocabulary (kernel/profiles.ts). Rules: docs/qa/excursion-rules.md.
 */
export * from "./engine.ts";
export * from "./metrics.ts";
export * from "./module.ts";
