/**
 * PostgreSQL backend: records, and optionally readings too (useful when several gateway
 * instances share one database). Dedupe is the primary key (agent_id, seq):
 *
 *   append(batch) -> BEGIN
 *                    INSERT INTO readings SELECT * FROM unnest($1::text[], …)   one statement per batch
 *                      ON CONFLICT DO NOTHING RETURNING agent_id, seq          = the new ones
 *                    upsert reading_latest per probe
 *                    COMMIT
 *
 * int8 columns come back from pg as strings; rows are checked and converted in rows.ts.
 * Store `close()` does not end the pool: the pool belongs to whoever created it.
 */
import pg from "pg";
import type { Logger } from "pino";
import { createSqlRecordStore, recordMigrations } from "./records-sql.ts";
import { checkBucketMs, latestPerProbe, readingFromRow, readingKey } from "./rows.ts";
import { pgTransaction, sqlDatabase } from "./sql/database.ts";
import { storeError } from "./sql/errors.ts";
import { migratePostgres } from "./sql/migrate.ts";
import { bucketFromRow } from "./sqlite.ts";
import type { AppendResult, ReadingBucket, ReadingStore, RecordStore, StoredReading } from "./types.ts";

export interface PgPoolOptions {
  /** Logs a lost idle connection at warn. */
  log?: Logger;
  /** Connections in the pool (default 10). */
  max?: number;
}

export function createPgPool(url: string, options: PgPoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10 });
  // An idle client losing its connection emits 'error' on the pool; without a listener that
  // would crash the process. The next query gets a fresh client and reports CT_STORE_IO itself.
  pool.on("error", (err) => options.log?.warn({ err }, "idle postgres connection lost"));
  return pool;
}

/** Migrations of module "storage.readings" (PostgreSQL). */
export const pgReadingMigrations: readonly string[] = [
  `CREATE TABLE readings (
     agent_id TEXT NOT NULL, seq BIGINT NOT NULL, site_id TEXT NOT NULL, unit_id TEXT NOT NULL,
     probe_id TEXT NOT NULL, observed_at BIGINT NOT NULL, received_at BIGINT NOT NULL,
     temp_c DOUBLE PRECISION, quality TEXT NOT NULL, backfill BOOLEAN NOT NULL,
     PRIMARY KEY (agent_id, seq));
   CREATE INDEX readings_unit_time ON readings (unit_id, observed_at);
   CREATE TABLE reading_latest (
     unit_id TEXT NOT NULL, probe_id TEXT NOT NULL, agent_id TEXT NOT NULL, seq BIGINT NOT NULL,
     site_id TEXT NOT NULL, observed_at BIGINT NOT NULL, received_at BIGINT NOT NULL,
     temp_c DOUBLE PRECISION, quality TEXT NOT NULL, backfill BOOLEAN NOT NULL,
     PRIMARY KEY (unit_id, probe_id));`,
];

const COLS = "agent_id, seq, site_id, unit_id, probe_id, observed_at, received_at, temp_c, quality, backfill";
const UNNEST =
  "unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::float8[], $9::text[], $10::boolean[])";

/** Column arrays for UNNEST: one bound parameter per column, whatever the batch size. */
function columns(readings: readonly StoredReading[]): unknown[][] {
  const cols: unknown[][] = [[], [], [], [], [], [], [], [], [], []];
  for (const r of readings) {
    cols[0]?.push(r.agentId);
    cols[1]?.push(r.seq);
    cols[2]?.push(r.siteId);
    cols[3]?.push(r.unitId);
    cols[4]?.push(r.probeId);
    cols[5]?.push(r.observedAt);
    cols[6]?.push(r.receivedAt);
    cols[7]?.push(r.tempC);
    cols[8]?.push(r.quality);
    cols[9]?.push(r.backfill);
  }
  return cols;
}

/** Rows per INSERT: bounds statement size and memory for very large appends. */
const CHUNK = 10_000;

async function query(
  pool: pg.Pool | pg.PoolClient,
  op: string,
  sql: string,
  params: readonly unknown[],
  context: Record<string, unknown> = {},
): Promise<Record<string, unknown>[]> {
  try {
    const res = await pool.query(sql, params as unknown[]);
    return res.rows as Record<string, unknown>[];
  } catch (err) {
    throw storeError("postgres", op, err, context);
  }
}

export async function createPgReadingStore(pool: pg.Pool): Promise<ReadingStore> {
  await migratePostgres(pool, "storage.readings", pgReadingMigrations);
  return {
    async append(readings): Promise<AppendResult> {
      const inserted: StoredReading[] = [];
      if (readings.length === 0) return { inserted, duplicates: 0 };
      await pgTransaction(pool, async (client) => {
        for (let i = 0; i < readings.length; i += CHUNK) {
          const chunk = readings.slice(i, i + CHUNK);
          // ON CONFLICT DO NOTHING also skips a key repeated within the same statement.
          const rows = await query(
            client,
            "append readings",
            `INSERT INTO readings (${COLS}) SELECT * FROM ${UNNEST} ON CONFLICT DO NOTHING RETURNING agent_id, seq`,
            columns(chunk),
            { count: chunk.length },
          );
          const fresh = new Set(rows.map((row) => `${String(row.agent_id)}\u0000${String(row.seq)}`));
          for (const r of chunk) {
            const k = readingKey(r);
            if (fresh.delete(k)) inserted.push(r);
          }
        }
        const latest = latestPerProbe(inserted);
        if (latest.length > 0) {
          await query(
            client,
            "upsert latest readings",
            `INSERT INTO reading_latest AS l (${COLS}) SELECT * FROM ${UNNEST}
             ON CONFLICT (unit_id, probe_id) DO UPDATE SET agent_id = excluded.agent_id, seq = excluded.seq,
               site_id = excluded.site_id, observed_at = excluded.observed_at, received_at = excluded.received_at,
               temp_c = excluded.temp_c, quality = excluded.quality, backfill = excluded.backfill
             WHERE (excluded.observed_at, excluded.agent_id COLLATE "C", excluded.seq)
                 > (l.observed_at, l.agent_id COLLATE "C", l.seq)`,
            columns(latest),
          );
        }
      });
      return { inserted, duplicates: readings.length - inserted.length };
    },

    async range(q) {
      const where = ["unit_id = $1", "observed_at >= $2", "observed_at < $3"];
      const args: unknown[] = [q.unitId, q.from, q.to];
      if (q.siteId !== undefined) {
        args.push(q.siteId);
        where.push(`site_id = $${args.length}`);
      }
      if (q.probeId !== undefined) {
        args.push(q.probeId);
        where.push(`probe_id = $${args.length}`);
      }
      let sql = `SELECT ${COLS} FROM readings WHERE ${where.join(" AND ")}
        ORDER BY observed_at, probe_id COLLATE "C", agent_id COLLATE "C", seq`;
      if (q.limit !== undefined) {
        args.push(q.limit);
        sql += ` LIMIT $${args.length}`;
      }
      const rows = await query(pool, "range readings", sql, args, { unitId: q.unitId });
      return rows.map((row) => readingFromRow("postgres", row));
    },

    async downsample(q): Promise<ReadingBucket[]> {
      checkBucketMs("postgres", q.bucketMs);
      const args: unknown[] = [q.bucketMs, q.unitId, q.from, q.to];
      let probe = "";
      if (q.probeId !== undefined) {
        args.push(q.probeId);
        probe = ` AND probe_id = $${args.length}`;
      }
      // bigint / bigint is integer division: epoch-aligned buckets, like InfluxQL GROUP BY time().
      const sql = `SELECT (observed_at / $1::bigint) * $1::bigint AS start, probe_id, min(temp_c) AS min,
          max(temp_c) AS max, avg(temp_c) AS mean, count(*) AS count
        FROM readings
        WHERE unit_id = $2 AND observed_at >= $3 AND observed_at < $4${probe} AND quality = 'ok' AND temp_c IS NOT NULL
        GROUP BY 1, probe_id ORDER BY 1, probe_id COLLATE "C"`;
      const rows = await query(pool, "downsample readings", sql, args, { unitId: q.unitId });
      return rows.map((row) => bucketFromRow("postgres", row));
    },

    async latest(unitId) {
      const rows = await query(
        pool,
        "latest readings",
        `SELECT ${COLS} FROM reading_latest WHERE unit_id = $1 ORDER BY probe_id COLLATE "C"`,
        [unitId],
        { unitId },
      );
      return rows.map((row) => readingFromRow("postgres", row));
    },

    async missingSeqs(agentId, fromSeq, toSeq) {
      if (toSeq < fromSeq) return 0;
      const rows = await query(
        pool,
        "count readings by seq",
        "SELECT COUNT(*) AS n FROM readings WHERE agent_id = $1 AND seq BETWEEN $2 AND $3",
        [agentId, fromSeq, toSeq],
        { agentId },
      );
      return toSeq - fromSeq + 1 - Number(rows[0]?.n ?? 0);
    },

    async close() {},
  };
}

export async function createPgRecordStore(pool: pg.Pool): Promise<RecordStore> {
  await migratePostgres(pool, "storage.records", recordMigrations("postgres"));
  return createSqlRecordStore(sqlDatabase({ kind: "postgres", pool }));
}
