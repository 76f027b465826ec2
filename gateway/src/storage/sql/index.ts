/**
 * The SQL seam of the gateway's storage: one executor/transaction interface over SQLite and
 * PostgreSQL (database.ts), one lock per SQLite database (lock.ts), one `storeError`
 * (errors.ts), per-module migrations (migrate.ts) and the SQLite WAL checkpointer
 * (checkpointer.ts). Every SQL user of the records database goes through here.
 */
export * from "./checkpointer.ts";
export * from "./database.ts";
export * from "./errors.ts";
export * from "./lock.ts";
export * from "./migrate.ts";
