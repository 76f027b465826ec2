/**
 * Open the storage backends named in the configuration (storage.records / storage.readings)
 * through the storage module's `createStorage`, creating the SQLite file's folder first.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { GatewayConfig } from "../config/schema.ts";
import { createStorage, type Storage, type StorageConfig } from "../storage/index.ts";

export type OpenStorage = Storage;

export function storageConfigOf(cfg: GatewayConfig["storage"]): StorageConfig {
  const records: StorageConfig["records"] =
    cfg.records.backend === "sqlite"
      ? { kind: "sqlite", path: cfg.records.path }
      : { kind: "postgres", url: cfg.records.url };
  const r = cfg.readings;
  const readings: StorageConfig["readings"] =
    r.backend === "influx"
      ? {
          kind: "influx",
          url: r.url,
          database: r.database,
          ...(r.retentionPolicy === undefined ? {} : { retentionPolicy: r.retentionPolicy }),
        }
      : { kind: r.backend };
  return { records, readings };
}

export async function openStorage(cfg: GatewayConfig["storage"]): Promise<OpenStorage> {
  if (cfg.records.backend === "sqlite" && cfg.records.path !== ":memory:") {
    mkdirSync(path.dirname(cfg.records.path), { recursive: true });
  }
  return createStorage(storageConfigOf(cfg));
}
