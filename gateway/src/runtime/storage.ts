/**
 * Open the storage backends named in the configuration (storage.records / storage.readings).
 * One SQLite handle is shared when both use the same file; one PostgreSQL pool when both use
 * the same URL.
 */

import { mkdirSync } from "node:fs";
import path from "node:path";
import type { DatabaseSync } from "node:sqlite";
import type pg from "pg";
import type { GatewayConfig } from "../config/schema.ts";
import { createPgPool, createPgReadingStore, createPgRecordStore } from "../storage/postgres.ts";
import { createSqliteReadingStore, createSqliteRecordStore, openSqlite } from "../storage/sqlite.ts";
import type { ReadingStore, RecordStore } from "../storage/types.ts";

export interface OpenStorage {
  readings: ReadingStore;
  records: RecordStore;
  /** The SQLite handle of the records store, for modules that share it (lots). */
  sqlite?: DatabaseSync;
  /** The PostgreSQL pool of the records store, for modules that share it (lots). */
  pgPool?: pg.Pool;
  close(): Promise<void>;
}

export type ReadingStoreFactory = (cfg: { url: string; database: string }) => Promise<ReadingStore>;

export async function openStorage(
  cfg: GatewayConfig["storage"],
  extra: { influx?: ReadingStoreFactory } = {},
): Promise<OpenStorage> {
  const dbs = new Map<string, DatabaseSync>();
  const pools = new Map<string, pg.Pool>();
  const sqlite = (file: string) => {
    let db = dbs.get(file);
    if (!db) {
      if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true });
      db = openSqlite(file);
      dbs.set(file, db);
    }
    return db;
  };
  const pool = (url: string) => {
    let p = pools.get(url);
    if (!p) {
      p = createPgPool(url);
      pools.set(url, p);
    }
    return p;
  };
  const closeAll = async () => {
    for (const db of dbs.values()) db.close();
    await Promise.all([...pools.values()].map((p) => p.end()));
  };
  try {
    const records =
      cfg.records.backend === "sqlite"
        ? await createSqliteRecordStore(sqlite(cfg.records.path))
        : await createPgRecordStore(pool(cfg.records.url));
    let readings: ReadingStore;
    switch (cfg.readings.backend) {
      case "sqlite":
        readings = await createSqliteReadingStore(sqlite(cfg.readings.path));
        break;
      case "postgres":
        readings = await createPgReadingStore(pool(cfg.readings.url));
        break;
      case "influx": {
        if (!extra.influx) throw new Error("no InfluxDB reading store available");
        readings = await extra.influx({ url: cfg.readings.url, database: cfg.readings.database });
        break;
      }
    }
    const recordsDb = cfg.records.backend === "sqlite" ? dbs.get(cfg.records.path) : undefined;
    const recordsPool = cfg.records.backend === "postgres" ? pools.get(cfg.records.url) : undefined;
    return {
      readings,
      records,
      ...(recordsDb ? { sqlite: recordsDb } : {}),
      ...(recordsPool ? { pgPool: recordsPool } : {}),
      async close() {
        await readings.close();
        await records.close();
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
