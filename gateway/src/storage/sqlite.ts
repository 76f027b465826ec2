/**
 * SQLite backend (node:sqlite, synchronous, in process): readings and records in one file.
 * WAL so the API reads while ingest writes; synchronous=NORMAL, which in WAL mode can lose the
 * last transactions on power loss but never corrupts (sqlite.org/pragma.html#pragma_synchronous);
 * agents resend anything not acknowledged, and append is idempotent, so that is safe.
 *
 *   append(batch) -> BEGIN; INSERT … ON CONFLICT DO NOTHING per reading (prepared);
 *                    upsert reading_latest per probe; COMMIT
 *
 * Every writer of the file takes the database's one lock (sql/lock.ts). Store `close()` does not
 * close the database handle: the handle belongs to whoever opened it (`createStorage` closes
 * it), because the record store, the outbox and the modules share it.
 */
import { DatabaseSync } from "node:sqlite";
import { createSqlRecordStore, recordMigrations } from "./records-sql.ts";
import { checkBucketMs, latestPerProbe, num, readingFromRow, str } from "./rows.ts";
import { sqlDatabase } from "./sql/database.ts";
import { storeError } from "./sql/errors.ts";
import { databaseLock } from "./sql/lock.ts";
import { migrateSqlite } from "./sql/migrate.ts";
import type { AppendResult, ReadingBucket, ReadingStore, RecordStore, StoredReading } from "./types.ts";

export const SQLITE_BUSY_TIMEOUT_MS = 5000;

export function openSqlite(path: string): DatabaseSync {
  try {
    const db = new DatabaseSync(path, { timeout: SQLITE_BUSY_TIMEOUT_MS });
    if (path !== ":memory:") db.exec("PRAGMA journal_mode = WAL");
    db.exec(
      `PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}; PRAGMA foreign_keys = ON;`,
    );
    return db;
  } catch (err) {
    throw storeError("sqlite", "open", err, { path });
  }
}

/** Migrations of module "storage.readings" (SQLite). */
export const sqliteReadingMigrations: readonly string[] = [
  `CREATE TABLE readings (
     agent_id TEXT NOT NULL, seq INTEGER NOT NULL, site_id TEXT NOT NULL, unit_id TEXT NOT NULL,
     probe_id TEXT NOT NULL, observed_at INTEGER NOT NULL, received_at INTEGER NOT NULL, temp_c REAL,
     quality TEXT NOT NULL, backfill INTEGER NOT NULL,
     PRIMARY KEY (agent_id, seq)) WITHOUT ROWID;
   CREATE INDEX readings_unit_time ON readings (unit_id, observed_at);
   CREATE TABLE reading_latest (
     unit_id TEXT NOT NULL, probe_id TEXT NOT NULL, agent_id TEXT NOT NULL, seq INTEGER NOT NULL,
     site_id TEXT NOT NULL, observed_at INTEGER NOT NULL, received_at INTEGER NOT NULL, temp_c REAL,
     quality TEXT NOT NULL, backfill INTEGER NOT NULL,
     PRIMARY KEY (unit_id, probe_id)) WITHOUT ROWID;`,
];

const COLS = "agent_id, seq, site_id, unit_id, probe_id, observed_at, received_at, temp_c, quality, backfill";

function params(r: StoredReading): (string | number | null)[] {
  return [
    r.agentId,
    r.seq,
    r.siteId,
    r.unitId,
    r.probeId,
    r.observedAt,
    r.receivedAt,
    r.tempC,
    r.quality,
    r.backfill ? 1 : 0,
  ];
}

export async function createSqliteReadingStore(db: DatabaseSync): Promise<ReadingStore> {
  migrateSqlite(db, "storage.readings", sqliteReadingMigrations);
  const lock = databaseLock(db);
  let insert: ReturnType<DatabaseSync["prepare"]>;
  let upsertLatest: ReturnType<DatabaseSync["prepare"]>;
  try {
    insert = db.prepare(
      `INSERT INTO readings (${COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    upsertLatest = db.prepare(
      `INSERT INTO reading_latest (${COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (unit_id, probe_id) DO UPDATE SET agent_id = excluded.agent_id, seq = excluded.seq,
         site_id = excluded.site_id, observed_at = excluded.observed_at, received_at = excluded.received_at,
         temp_c = excluded.temp_c, quality = excluded.quality, backfill = excluded.backfill
       WHERE (excluded.observed_at, excluded.agent_id, excluded.seq)
           > (reading_latest.observed_at, reading_latest.agent_id, reading_latest.seq)`,
    );
  } catch (err) {
    throw storeError("sqlite", "prepare readings", err);
  }

  return {
    async append(readings): Promise<AppendResult> {
      const inserted: StoredReading[] = [];
      if (readings.length === 0) return { inserted, duplicates: 0 };
      // The database's one lock (sql/lock.ts): never inside another writer's open transaction.
      await lock.lock(async () => {
        try {
          db.exec("BEGIN IMMEDIATE");
          try {
            for (const r of readings) {
              if (insert.run(...params(r)).changes > 0) inserted.push(r);
            }
            for (const r of latestPerProbe(inserted)) upsertLatest.run(...params(r));
            db.exec("COMMIT");
          } catch (err) {
            if (db.isTransaction) db.exec("ROLLBACK");
            throw err;
          }
        } catch (err) {
          throw storeError("sqlite", "append readings", err, { count: readings.length });
        }
      });
      return { inserted, duplicates: readings.length - inserted.length };
    },

    async range(q) {
      const where = ["unit_id = ?", "observed_at >= ?", "observed_at < ?"];
      const args: (string | number)[] = [q.unitId, q.from, q.to];
      if (q.siteId !== undefined) {
        where.push("site_id = ?");
        args.push(q.siteId);
      }
      if (q.probeId !== undefined) {
        where.push("probe_id = ?");
        args.push(q.probeId);
      }
      let sql = `SELECT ${COLS} FROM readings WHERE ${where.join(" AND ")} ORDER BY observed_at, probe_id, agent_id, seq`;
      if (q.limit !== undefined) {
        sql += " LIMIT ?";
        args.push(q.limit);
      }
      let rows: Record<string, unknown>[];
      try {
        rows = db.prepare(sql).all(...args) as Record<string, unknown>[];
      } catch (err) {
        throw storeError("sqlite", "range readings", err, { unitId: q.unitId });
      }
      return rows.map((row) => readingFromRow("sqlite", row));
    },

    async downsample(q): Promise<ReadingBucket[]> {
      checkBucketMs("sqlite", q.bucketMs);
      const args: (string | number)[] = [q.bucketMs, q.bucketMs, q.unitId, q.from, q.to];
      let probe = "";
      if (q.probeId !== undefined) {
        probe = " AND probe_id = ?";
        args.push(q.probeId);
      }
      // Integer division (node:sqlite binds JS numbers as REAL, hence the CASTs): the bucket start is
      // exact and epoch-aligned, like InfluxQL GROUP BY time().
      const sql = `SELECT (observed_at / CAST(? AS INTEGER)) * CAST(? AS INTEGER) AS start, probe_id, min(temp_c) AS min, max(temp_c) AS max,
          avg(temp_c) AS mean, count(*) AS count
        FROM readings
        WHERE unit_id = ? AND observed_at >= ? AND observed_at < ?${probe} AND quality = 'ok' AND temp_c IS NOT NULL
        GROUP BY start, probe_id ORDER BY start, probe_id`;
      let rows: Record<string, unknown>[];
      try {
        rows = db.prepare(sql).all(...args) as Record<string, unknown>[];
      } catch (err) {
        throw storeError("sqlite", "downsample readings", err, { unitId: q.unitId });
      }
      return rows.map((row) => bucketFromRow("sqlite", row));
    },

    async latest(unitId) {
      let rows: Record<string, unknown>[];
      try {
        rows = db
          .prepare(`SELECT ${COLS} FROM reading_latest WHERE unit_id = ? ORDER BY probe_id`)
          .all(unitId) as Record<string, unknown>[];
      } catch (err) {
        throw storeError("sqlite", "latest readings", err, { unitId });
      }
      return rows.map((row) => readingFromRow("sqlite", row));
    },

    async missingSeqs(agentId, fromSeq, toSeq) {
      if (toSeq < fromSeq) return 0;
      try {
        const row = db
          .prepare("SELECT COUNT(*) AS n FROM readings WHERE agent_id = ? AND seq BETWEEN ? AND ?")
          .get(agentId, fromSeq, toSeq) as { n: number };
        return toSeq - fromSeq + 1 - Number(row.n);
      } catch (err) {
        throw storeError("sqlite", "count readings by seq", err, { agentId });
      }
    },

    async close() {},
  };
}

export function bucketFromRow(backend: "sqlite" | "postgres", row: Record<string, unknown>): ReadingBucket {
  const w = "downsample";
  return {
    start: num(backend, w, "start", row.start),
    probeId: str(backend, w, "probe_id", row.probe_id),
    min: num(backend, w, "min", row.min),
    max: num(backend, w, "max", row.max),
    mean: num(backend, w, "mean", row.mean),
    count: num(backend, w, "count", row.count),
  };
}

export async function createSqliteRecordStore(db: DatabaseSync): Promise<RecordStore> {
  migrateSqlite(db, "storage.records", recordMigrations("sqlite"));
  return createSqlRecordStore(sqlDatabase({ kind: "sqlite", db }));
}
