/**
 * InfluxDB 1.x ReadingStore (1.6–1.8, v1 /write and /query through the `influx` client), for
 * sites that already run Grafana on Influx.
 *
 * Layout, one measurement `reading`:
 *   tags   site, unit, probe, quality      few distinct values, what dashboards filter and GROUP BY
 *   fields tempC (float, absent when null), seq (int), agent (string), receivedAt (int ms), backfill (bool)
 *   time   observedAt, written with precision ms
 *
 * Tags are indexed and every distinct tag set is a series held in memory by influxd, so only
 * bounded values are tags (a few thousand probes × 5 qualities). seq, agent and receivedAt grow
 * without bound or are unique per point: as tags they would explode series cardinality.
 *
 * Influx cannot say whether a write was new, so dedupe by (agentId, seq) goes through a
 * SeqLedger kept in the record database (see seq-ledger.ts):
 *
 *   append(batch) -> fresh = ledger.unseen(batch) -> writePoints(fresh, chunks of 5000)
 *                 -> ledger.commit(fresh)
 *
 * Write first, then ledger: writing an identical point twice is idempotent in Influx (same
 * series and time: the point is overwritten with the same fields), so a crash in between is
 * safe; the resend is written again and committed then.
 *
 * Limit: two readings of one probe with the same observedAt (ms) and quality are one point in
 * Influx; the later write wins. Agents poll a probe at most every 100 ms, so this does not occur.
 */
import { ColdtraceError } from "@coldtrace/protocol";
import { FieldType, InfluxDB, type IPoint, escape as influxEscape } from "influx";
import { bool, checkBucketMs, compareReadings, num, qualityOf, storeError, str } from "./rows.ts";
import type { SeqLedger } from "./seq-ledger.ts";
import type { ReadingBucket, ReadingStore, StoredReading } from "./types.ts";

export const INFLUX_MEASUREMENT = "reading";
/** Points per /write request; InfluxData recommends batches of 5,000–10,000 points. */
export const INFLUX_WRITE_CHUNK = 5000;

export interface InfluxStoreOptions {
  url: string;
  database: string;
  retentionPolicy?: string;
}

interface RawSeries {
  name?: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

interface RawResults {
  results?: { statement_id?: number; series?: RawSeries[]; error?: string }[];
  error?: string;
}

function clientFor(opts: InfluxStoreOptions): InfluxDB {
  let u: URL;
  try {
    u = new URL(opts.url);
  } catch (err) {
    throw storeError("influx", "parse url", err, { url: opts.url });
  }
  return new InfluxDB({
    host: u.hostname,
    port: u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 8086,
    protocol: u.protocol === "https:" ? "https" : "http",
    ...(u.username
      ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) }
      : {}),
    database: opts.database,
    schema: [
      {
        measurement: INFLUX_MEASUREMENT,
        tags: ["site", "unit", "probe", "quality"],
        fields: {
          tempC: FieldType.FLOAT,
          seq: FieldType.INTEGER,
          agent: FieldType.STRING,
          receivedAt: FieldType.INTEGER,
          backfill: FieldType.BOOLEAN,
        },
      },
    ],
  });
}

function point(r: StoredReading): IPoint {
  return {
    measurement: INFLUX_MEASUREMENT,
    tags: { site: r.siteId, unit: r.unitId, probe: r.probeId, quality: r.quality },
    fields: { tempC: r.tempC, seq: r.seq, agent: r.agentId, receivedAt: r.receivedAt, backfill: r.backfill },
    timestamp: r.observedAt,
  };
}

/** Integer epoch ms as an InfluxQL absolute time (`1767225600000ms`). */
function timeLit(ms: number): string {
  if (!Number.isSafeInteger(ms)) {
    throw new ColdtraceError("CT_STORE_IO", `influx: time bound must be an integer epoch in ms, got ${ms}`, {
      backend: "influx",
    });
  }
  return `${ms}ms`;
}

function columnsOf(series: RawSeries): Map<string, number> {
  return new Map(series.columns.map((c, i) => [c, i]));
}

export async function createInfluxReadingStore(
  opts: InfluxStoreOptions,
  deps: { dedupe: SeqLedger },
): Promise<ReadingStore> {
  const influx = clientFor(opts);
  const db = opts.database;
  const from = opts.retentionPolicy
    ? `${influxEscape.quoted(opts.retentionPolicy)}.${influxEscape.quoted(INFLUX_MEASUREMENT)}`
    : influxEscape.quoted(INFLUX_MEASUREMENT);
  try {
    // CREATE DATABASE is idempotent in 1.x.
    await influx.createDatabase(db);
  } catch (err) {
    throw storeError("influx", "create database", err, { database: db, url: opts.url });
  }

  async function select(op: string, q: string, context: Record<string, unknown>): Promise<RawSeries[]> {
    let raw: RawResults;
    try {
      raw = (await influx.queryRaw(q, { database: db, precision: "ms" })) as RawResults;
    } catch (err) {
      throw storeError("influx", op, err, context);
    }
    const result = raw?.results?.[0];
    if (raw?.error || result?.error || !result) {
      throw new ColdtraceError(
        "CT_STORE_IO",
        `influx: ${op} failed: ${raw?.error ?? result?.error ?? "no result"}`,
        {
          backend: "influx",
          op,
          ...context,
        },
      );
    }
    return result.series ?? [];
  }

  function readingOf(series: RawSeries, cols: Map<string, number>, row: unknown[]): StoredReading {
    const w = INFLUX_MEASUREMENT;
    const get = (c: string) => {
      const i = cols.get(c);
      return i === undefined ? (series.tags?.[c] ?? null) : row[i];
    };
    const tempC = get("tempC");
    return {
      agentId: str("influx", w, "agent", get("agent")),
      seq: num("influx", w, "seq", get("seq")),
      siteId: str("influx", w, "site", get("site")),
      unitId: str("influx", w, "unit", get("unit")),
      probeId: str("influx", w, "probe", get("probe")),
      observedAt: num("influx", w, "time", get("time")),
      receivedAt: num("influx", w, "receivedAt", get("receivedAt")),
      tempC: tempC === null ? null : num("influx", w, "tempC", tempC),
      quality: qualityOf("influx", w, get("quality")),
      backfill: bool("influx", w, "backfill", get("backfill")),
    };
  }

  // Appends run one at a time: unseen → write → commit must not interleave, or two concurrent
  // batches holding the same reading would both see it as new.
  let queue: Promise<unknown> = Promise.resolve();

  return {
    append(readings) {
      const run = async () => {
        const fresh = await deps.dedupe.unseen(readings);
        for (let i = 0; i < fresh.length; i += INFLUX_WRITE_CHUNK) {
          const chunk = fresh.slice(i, i + INFLUX_WRITE_CHUNK);
          try {
            await influx.writePoints(chunk.map(point), {
              database: db,
              precision: "ms",
              ...(opts.retentionPolicy ? { retentionPolicy: opts.retentionPolicy } : {}),
            });
          } catch (err) {
            throw storeError("influx", "append readings", err, { database: db, count: chunk.length });
          }
        }
        await deps.dedupe.commit(fresh);
        return { inserted: fresh, duplicates: readings.length - fresh.length };
      };
      const result = queue.then(run, run);
      queue = result.catch(() => {});
      return result;
    },

    async range(q) {
      const where = [
        `"unit" = ${influxEscape.stringLit(q.unitId)}`,
        `time >= ${timeLit(q.from)}`,
        `time < ${timeLit(q.to)}`,
      ];
      if (q.siteId !== undefined) where.push(`"site" = ${influxEscape.stringLit(q.siteId)}`);
      if (q.probeId !== undefined) where.push(`"probe" = ${influxEscape.stringLit(q.probeId)}`);
      let sql = `SELECT * FROM ${from} WHERE ${where.join(" AND ")} ORDER BY time ASC`;
      if (q.limit !== undefined) sql += ` LIMIT ${Math.max(0, Math.floor(q.limit))}`;
      const series = await select("range readings", sql, { unitId: q.unitId });
      const out: StoredReading[] = [];
      for (const s of series) {
        const cols = columnsOf(s);
        for (const row of s.values) out.push(readingOf(s, cols, row));
      }
      return out.sort(compareReadings);
    },

    async downsample(q): Promise<ReadingBucket[]> {
      checkBucketMs("influx", q.bucketMs);
      const where = [
        `"unit" = ${influxEscape.stringLit(q.unitId)}`,
        `"quality" = 'ok'`,
        `time >= ${timeLit(q.from)}`,
        `time < ${timeLit(q.to)}`,
      ];
      if (q.probeId !== undefined) where.push(`"probe" = ${influxEscape.stringLit(q.probeId)}`);
      // GROUP BY time() buckets start at epoch multiples of the interval, like the SQL backends'
      // integer arithmetic; fill(none) leaves out empty buckets.
      const sql = `SELECT min("tempC") AS "min", max("tempC") AS "max", mean("tempC") AS "mean", count("tempC") AS "count"
        FROM ${from} WHERE ${where.join(" AND ")} GROUP BY time(${q.bucketMs}ms), "probe" fill(none)`;
      const series = await select("downsample readings", sql, { unitId: q.unitId });
      const out: ReadingBucket[] = [];
      for (const s of series) {
        const cols = columnsOf(s);
        const probeId = str("influx", "downsample", "probe", s.tags?.probe);
        const at = (row: unknown[], c: string) => num("influx", "downsample", c, row[cols.get(c) ?? -1]);
        for (const row of s.values) {
          out.push({
            start: at(row, "time"),
            probeId,
            min: at(row, "min"),
            max: at(row, "max"),
            mean: at(row, "mean"),
            count: at(row, "count"),
          });
        }
      }
      return out.sort(
        (a, b) => a.start - b.start || (a.probeId < b.probeId ? -1 : a.probeId > b.probeId ? 1 : 0),
      );
    },

    async latest(unitId) {
      const sql = `SELECT * FROM ${from} WHERE "unit" = ${influxEscape.stringLit(unitId)} GROUP BY "probe" ORDER BY time DESC LIMIT 1`;
      const series = await select("latest readings", sql, { unitId });
      const out: StoredReading[] = [];
      for (const s of series) {
        const cols = columnsOf(s);
        for (const row of s.values) out.push(readingOf(s, cols, row));
      }
      return out.sort((a, b) => (a.probeId < b.probeId ? -1 : a.probeId > b.probeId ? 1 : 0));
    },

    async close() {
      await queue;
    },
  };
}
