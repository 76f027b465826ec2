/**
 * Gateway storage: the ReadingStore and RecordStore seams, their SQLite, PostgreSQL and
 * InfluxDB 1.x backends, the SQL seam every user of the records database goes through (sql/:
 * executor and transactions, one lock per database, storeError, migrations, WAL checkpointer),
 * and `createStorage`, which opens the backends a configuration names. See
 * docs/integrator/storage.md.
 *
 *   records: sqlite(path) | postgres(url)          units, probes, agents, alarms, excursions, gaps
 *   readings: sqlite | postgres                    in the records database
 *           | influx(url, database)                 with its SeqLedger in the records database
 */
import type { DatabaseSync } from "node:sqlite";
import { ColdtraceError } from "@coldtrace/protocol";
import type pg from "pg";
import type { Logger } from "pino";
import { createInfluxReadingStore } from "./influx.ts";
import { createPgPool, createPgReadingStore, createPgRecordStore } from "./postgres.ts";
import { createPgSeqLedger, createSqliteSeqLedger } from "./seq-ledger.ts";
import { type RecordDb, type SqlDatabase, sqlDatabase } from "./sql/database.ts";
import { createSqliteReadingStore, createSqliteRecordStore, openSqlite } from "./sqlite.ts";
import type { ReadingStore, RecordStore } from "./types.ts";

export * from "./influx.ts";
export * from "./influx-status.ts";
export * from "./postgres.ts";
export * from "./seq-ledger.ts";
export * from "./sql/index.ts";
export * from "./sqlite.ts";
export type * from "./types.ts";

export interface StorageConfig {
  records: { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };
  readings:
    | { kind: "sqlite" }
    | { kind: "postgres" }
    | { kind: "influx"; url: string; database: string; retentionPolicy?: string };
}

export interface Storage {
  readings: ReadingStore;
  records: RecordStore;
  /** The records database through the SQL seam: the outbox and the modules migrate and use it. */
  sql: SqlDatabase;
  /** The records database when it is SQLite (the WAL checkpointer needs the handle). */
  sqlite?: DatabaseSync;
  /** The records pool when it is PostgreSQL. */
  pg?: pg.Pool;
  /** Closes the stores, then the database handle or pool. */
  close(): Promise<void>;
}

export interface StorageOptions {
  /** Parent logger; storage logs under `{ component: "storage" }`. */
  log?: Logger;
}

export async function createStorage(config: StorageConfig, options: StorageOptions = {}): Promise<Storage> {
  const r = config.readings.kind;
  if ((r === "sqlite" || r === "postgres") && r !== config.records.kind) {
    throw new ColdtraceError(
      "CT_CFG_INVALID",
      `storage.readings.kind: "${r}" keeps readings in the records database, which is "${config.records.kind}"; use "${config.records.kind}" or "influx"`,
      { path: "storage.readings.kind", got: r },
    );
  }
  let sqlite: DatabaseSync | undefined;
  let pool: pg.Pool | undefined;
  let db: RecordDb;
  try {
    let records: RecordStore;
    let readings: ReadingStore;
    if (config.records.kind === "sqlite") {
      const file = openSqlite(config.records.path);
      sqlite = file;
      db = { kind: "sqlite", db: file };
      records = await createSqliteRecordStore(file);
      readings =
        config.readings.kind === "influx"
          ? await createInfluxReadingStore(config.readings, { dedupe: createSqliteSeqLedger(file) })
          : await createSqliteReadingStore(file);
    } else {
      const p = createPgPool(
        config.records.url,
        options.log ? { log: options.log.child({ component: "storage" }) } : {},
      );
      pool = p;
      db = { kind: "postgres", pool: p };
      records = await createPgRecordStore(p);
      readings =
        config.readings.kind === "influx"
          ? await createInfluxReadingStore(config.readings, { dedupe: await createPgSeqLedger(p) })
          : await createPgReadingStore(p);
    }
    return {
      readings,
      records,
      sql: sqlDatabase(db),
      ...(sqlite ? { sqlite } : {}),
      ...(pool ? { pg: pool } : {}),
      async close() {
        await readings.close();
        await records.close();
        if (sqlite?.isOpen) sqlite.close();
        await pool?.end();
      },
    };
  } catch (err) {
    if (sqlite?.isOpen) sqlite.close();
    await pool?.end().catch(() => {});
    throw err;
  }
}
