/**
 * Gateway storage: the ReadingStore and RecordStore seams, their SQLite, PostgreSQL and
 * InfluxDB 1.x backends, the per-module migration runner, and `createStorage` which wires a
 * configuration to backends. See docs/integrator/storage.md.
 */
export * from "./migrate.ts";
export * from "./sqlite.ts";
export type * from "./types.ts";
