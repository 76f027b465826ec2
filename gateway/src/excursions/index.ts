/**
 * Excursions: the event-time engine (engine.ts), unit profiles (profiles.ts) and exposure
 * metrics with MKT (metrics.ts). Pure domain logic, no I/O. Rules: docs/qa/excursion-rules.md.
 */
export * from "./engine.ts";
export * from "./metrics.ts";
export * from "./profiles.ts";
