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
 *   append(batch) -> claim readings neither in the ledger nor in flight in another append
 *                 -> writePoints(claimed, chunks of 5000) -> ledger.commit(claimed)
 *   Appends may overlap (throughput); one that holds a reading another append is writing
 *   waits for that write and counts the reading as a duplicate.
 *
 * Write first, then ledger: writing an identical point twice is idempotent in Influx (same
 * series and time: the point is overwritten with the same fields), so a crash in between is
 * safe; the resend is written again and committed then.
 *
 * Limit: two readings of one probe with the same observedAt (ms) and quality are one point in
 * Influx; the later write wins. Agents poll a probe at most every 100 ms, so this does not occur.
 */
import { ColdtraceError } from "@coldtrace/protocol";
import { FieldType, InfluxDB, type IPoint, type ISchemaOptions, escape as influxEscape } from "influx";
import { bool, checkBucketMs, compareReadings, num, qualityOf, readingKey, str } from "./rows.ts";
import type { SeqLedger } from "./seq-ledger.ts";
import { storeError } from "./sql/errors.ts";
import type { AppendResult, ReadingBucket, ReadingStore, StoredReading } from "./types.ts";

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

/** An `influx` client for `opts.url` (user and password may be in the URL), with an optional point schema. */
export function influxClient(opts: InfluxStoreOptions, schema?: ISchemaOptions[]): InfluxDB {
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
    ...(schema ? { schema } : {}),
  });
}

function clientFor(opts: InfluxStoreOptions): InfluxDB {
  return influxClient(opts, [
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
  ]);
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

  async function write(readings: readonly StoredReading[]): Promise<void> {
    const chunks: StoredReading[][] = [];
    for (let i = 0; i < readings.length; i += INFLUX_WRITE_CHUNK)
      chunks.push(readings.slice(i, i + INFLUX_WRITE_CHUNK));
    const writeChunk = async (chunk: StoredReading[]) => {
      try {
        await influx.writePoints(chunk.map(point), {
          database: db,
          precision: "ms",
          ...(opts.retentionPolicy ? { retentionPolicy: opts.retentionPolicy } : {}),
        });
      } catch (err) {
        throw storeError("influx", "append readings", err, { database: db, count: chunk.length });
      }
    };
    // Two requests in flight: influxd parses one while the next is on the wire.
    for (let i = 0; i < chunks.length; i += 2) await Promise.all(chunks.slice(i, i + 2).map(writeChunk));
  }

  // Readings being written by an append that has not committed them yet, so that overlapping
  // appends (allowed, for throughput) never both report one reading as new. A flight settles
  // true once its readings are in the ledger, false if its write or commit failed.
  const inflight = new Map<string, Promise<boolean>>();
  const running = new Set<Promise<unknown>>();

  async function append(readings: readonly StoredReading[]): Promise<AppendResult> {
    if (readings.length === 0) return { inserted: [], duplicates: 0 };
    await deps.dedupe.load(readings.map((r) => r.agentId));
    // No await from here until the claims are registered: claiming is atomic.
    const mine: StoredReading[] = [];
    const claimed = new Set<string>();
    const waits = new Set<Promise<boolean>>();
    for (const r of readings) {
      if (deps.dedupe.seen(r.agentId, r.seq)) continue;
      const k = readingKey(r);
      if (claimed.has(k)) continue;
      const other = inflight.get(k);
      if (other) {
        waits.add(other);
        continue;
      }
      claimed.add(k);
      mine.push(r);
    }
    let settle: (committed: boolean) => void = () => {};
    const flight = new Promise<boolean>((resolve) => {
      settle = resolve;
    });
    for (const k of claimed) inflight.set(k, flight);
    try {
      if (mine.length > 0) {
        await write(mine);
        await deps.dedupe.commit(mine);
      }
      settle(true);
    } catch (err) {
      settle(false);
      throw storeError("influx", "append readings", err, { database: db, count: readings.length });
    } finally {
      // After the commit: a reading is always either in the ledger or in flight, never neither.
      for (const k of claimed) inflight.delete(k);
    }
    if ((await Promise.all(waits)).includes(false)) {
      throw new ColdtraceError(
        "CT_STORE_IO",
        "influx: a concurrent append of some of these readings failed; they are not stored, resend them",
        { backend: "influx", op: "append readings", database: db, count: readings.length },
      );
    }
    return { inserted: mine, duplicates: readings.length - mine.length };
  }

  return {
    append(readings) {
      const p = append(readings);
      running.add(p);
      const forget = () => running.delete(p);
      p.then(forget, forget);
      return p;
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

    // From the SeqLedger: it holds exactly the (agent, seq) pairs written to InfluxDB.
    async missingSeqs(agentId, fromSeq, toSeq) {
      if (toSeq < fromSeq) return 0;
      let stored = 0;
      for (const [lo, hi] of await deps.dedupe.intervals(agentId)) {
        const a = Math.max(lo, fromSeq);
        const b = Math.min(hi, toSeq);
        if (a <= b) stored += b - a + 1;
      }
      return toSeq - fromSeq + 1 - stored;
    },

    async close() {
      await Promise.allSettled([...running]);
    },
  };
}
