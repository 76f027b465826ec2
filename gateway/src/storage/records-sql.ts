/**
 * The RecordStore over the SQL seam (sql/database.ts), shared by SQLite and PostgreSQL. Each
 * record is one row: its whole payload as a JSON column, plus the few indexed columns queries
 * filter on. Statements use `?` placeholders, like every user of the seam.
 *
 *   upsertAlarm(a) -> INSERT … ON CONFLICT (alarm_id) DO UPDATE   (replace the whole record)
 *   listAlarms(q)  -> WHERE on indexed columns, payload from `data`
 */
import { ColdtraceError } from "@coldtrace/protocol";
import { jsonObject } from "./rows.ts";
import type { SqlExecutor, SqlRow, SqlValue } from "./sql/database.ts";
import type { Backend } from "./sql/errors.ts";
import type {
  AgentRecord,
  AlarmQuery,
  AlarmRecord,
  ExcursionQuery,
  ExcursionRecord,
  GapQuery,
  GapRecordRow,
  ProbeRecord,
  RecordStore,
  UnitRecord,
} from "./types.ts";

/** Migrations of module "storage.records". Types differ a little per dialect. */
export function recordMigrations(dialect: "sqlite" | "postgres"): string[] {
  const json = dialect === "sqlite" ? "TEXT" : "JSONB";
  const time = dialect === "sqlite" ? "INTEGER" : "BIGINT";
  return [
    `CREATE TABLE units (unit_id TEXT PRIMARY KEY, site_id TEXT NOT NULL, data ${json} NOT NULL);
     CREATE INDEX units_site ON units (site_id);
     CREATE TABLE probes (unit_id TEXT NOT NULL, probe_id TEXT NOT NULL, site_id TEXT NOT NULL, data ${json} NOT NULL,
       PRIMARY KEY (unit_id, probe_id));
     CREATE TABLE agents (agent_id TEXT PRIMARY KEY, site_id TEXT NOT NULL, data ${json} NOT NULL);
     CREATE INDEX agents_site ON agents (site_id);
     CREATE TABLE alarms (alarm_id TEXT PRIMARY KEY, site_id TEXT NOT NULL, unit_id TEXT NOT NULL, state TEXT NOT NULL,
       raised_at ${time} NOT NULL, cleared_at ${time}, data ${json} NOT NULL);
     CREATE INDEX alarms_unit_time ON alarms (unit_id, raised_at);
     CREATE INDEX alarms_site_time ON alarms (site_id, raised_at);
     CREATE TABLE excursions (excursion_id TEXT PRIMARY KEY, site_id TEXT NOT NULL, unit_id TEXT NOT NULL,
       started_at ${time} NOT NULL, ended_at ${time}, data ${json} NOT NULL);
     CREATE INDEX excursions_unit_time ON excursions (unit_id, started_at);
     CREATE INDEX excursions_site_time ON excursions (site_id, started_at);
     CREATE TABLE gaps (agent_id TEXT NOT NULL, gap_id TEXT NOT NULL, site_id TEXT NOT NULL,
       from_observed_at ${time} NOT NULL, to_observed_at ${time} NOT NULL, data ${json} NOT NULL,
       PRIMARY KEY (agent_id, gap_id));
     CREATE INDEX gaps_site_time ON gaps (site_id, from_observed_at);`,
  ];
}

interface Where {
  clauses: string[];
  params: SqlValue[];
}

function where(): Where & { add(sql: string, v: SqlValue): void; text(): string } {
  const w = {
    clauses: [] as string[],
    params: [] as SqlValue[],
    add(sql: string, v: SqlValue) {
      w.params.push(v);
      w.clauses.push(sql);
    },
    text() {
      return w.clauses.length ? `WHERE ${w.clauses.join(" AND ")}` : "";
    },
  };
  return w;
}

/** Time overlap of a row's [start, end-or-open] with [from, to). */
function overlap(
  w: ReturnType<typeof where>,
  startCol: string,
  endCol: string,
  from?: number,
  to?: number,
): void {
  if (to !== undefined) w.add(`${startCol} < ?`, to);
  if (from !== undefined) w.add(`(${endCol} IS NULL OR ${endCol} >= ?)`, from);
}

function checkId(
  backend: Backend,
  table: string,
  data: Record<string, unknown>,
  key: string,
  expected: unknown,
): void {
  if (data[key] !== expected) {
    throw new ColdtraceError(
      "CT_STORE_IO",
      `${backend}: ${table}.data.${key} does not match its row (${String(expected)})`,
      {
        backend,
        table,
        key,
      },
    );
  }
}

/** The record store on `sql` (the records database's seam). `close()` leaves the database open. */
export function createSqlRecordStore(sql: SqlExecutor): RecordStore {
  const b = sql.kind;
  // ORDER BY must sort like JS string comparison in every dialect: PostgreSQL's default
  // collation is locale-aware, "C" is byte order (same as SQLite's BINARY for ASCII ids).
  const c = b === "postgres" ? ' COLLATE "C"' : "";
  const parse = <T>(table: string, key: string, rows: SqlRow[], idCol: string): T[] =>
    rows.map((row) => {
      const data = jsonObject(b, table, "data", row.data);
      checkId(b, table, data, key, row[idCol]);
      return data as T;
    });
  const js = (v: unknown) => JSON.stringify(v);

  return {
    async upsertUnit(u: UnitRecord) {
      await sql.run(
        `INSERT INTO units (unit_id, site_id, data) VALUES (?, ?, ?)
         ON CONFLICT (unit_id) DO UPDATE SET site_id = excluded.site_id, data = excluded.data`,
        [u.unitId, u.siteId, js(u)],
      );
    },
    async listUnits(siteId?: string) {
      const w = where();
      if (siteId !== undefined) w.add("site_id = ?", siteId);
      const rows = await sql.all(
        `SELECT unit_id, data FROM units ${w.text()} ORDER BY unit_id${c}`,
        w.params,
      );
      return parse<UnitRecord>("units", "unitId", rows, "unit_id");
    },
    async getUnit(unitId: string) {
      const rows = await sql.all("SELECT unit_id, data FROM units WHERE unit_id = ?", [unitId]);
      return parse<UnitRecord>("units", "unitId", rows, "unit_id")[0];
    },
    async upsertProbe(p: ProbeRecord) {
      await sql.run(
        `INSERT INTO probes (unit_id, probe_id, site_id, data) VALUES (?, ?, ?, ?)
         ON CONFLICT (unit_id, probe_id) DO UPDATE SET site_id = excluded.site_id, data = excluded.data`,
        [p.unitId, p.probeId, p.siteId, js(p)],
      );
    },
    async listProbes(unitId?: string) {
      const w = where();
      if (unitId !== undefined) w.add("unit_id = ?", unitId);
      const rows = await sql.all(
        `SELECT probe_id, data FROM probes ${w.text()} ORDER BY unit_id${c}, probe_id${c}`,
        w.params,
      );
      return parse<ProbeRecord>("probes", "probeId", rows, "probe_id");
    },
    async upsertAgent(a: AgentRecord) {
      await sql.run(
        `INSERT INTO agents (agent_id, site_id, data) VALUES (?, ?, ?)
         ON CONFLICT (agent_id) DO UPDATE SET site_id = excluded.site_id, data = excluded.data`,
        [a.agentId, a.siteId, js(a)],
      );
    },
    async listAgents(siteId?: string) {
      const w = where();
      if (siteId !== undefined) w.add("site_id = ?", siteId);
      const rows = await sql.all(
        `SELECT agent_id, data FROM agents ${w.text()} ORDER BY agent_id${c}`,
        w.params,
      );
      return parse<AgentRecord>("agents", "agentId", rows, "agent_id");
    },
    async upsertAlarm(a: AlarmRecord) {
      await sql.run(
        `INSERT INTO alarms (alarm_id, site_id, unit_id, state, raised_at, cleared_at, data)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (alarm_id) DO UPDATE SET site_id = excluded.site_id, unit_id = excluded.unit_id,
           state = excluded.state, raised_at = excluded.raised_at, cleared_at = excluded.cleared_at, data = excluded.data`,
        [a.alarmId, a.siteId, a.unitId, a.state, a.raisedAt, a.clearedAt ?? null, js(a)],
      );
    },
    async getAlarm(id: string) {
      const rows = await sql.all("SELECT alarm_id, data FROM alarms WHERE alarm_id = ?", [id]);
      return parse<AlarmRecord>("alarms", "alarmId", rows, "alarm_id")[0];
    },
    async listAlarms(q: AlarmQuery) {
      const w = where();
      if (q.siteId !== undefined) w.add("site_id = ?", q.siteId);
      if (q.unitId !== undefined) w.add("unit_id = ?", q.unitId);
      if (q.state !== undefined) w.add("state = ?", q.state);
      overlap(w, "raised_at", "cleared_at", q.from, q.to);
      const rows = await sql.all(
        `SELECT alarm_id, data FROM alarms ${w.text()} ORDER BY raised_at, alarm_id${c}`,
        w.params,
      );
      return parse<AlarmRecord>("alarms", "alarmId", rows, "alarm_id");
    },
    async upsertExcursion(e: ExcursionRecord) {
      await sql.run(
        `INSERT INTO excursions (excursion_id, site_id, unit_id, started_at, ended_at, data)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (excursion_id) DO UPDATE SET site_id = excluded.site_id, unit_id = excluded.unit_id,
           started_at = excluded.started_at, ended_at = excluded.ended_at, data = excluded.data`,
        [e.excursionId, e.siteId, e.unitId, e.startedAt, e.endedAt, js(e)],
      );
    },
    async getExcursion(id: string) {
      const rows = await sql.all("SELECT excursion_id, data FROM excursions WHERE excursion_id = ?", [id]);
      return parse<ExcursionRecord>("excursions", "excursionId", rows, "excursion_id")[0];
    },
    async listExcursions(q: ExcursionQuery) {
      const w = where();
      if (q.siteId !== undefined) w.add("site_id = ?", q.siteId);
      if (q.unitId !== undefined) w.add("unit_id = ?", q.unitId);
      if (q.open === true) w.clauses.push("ended_at IS NULL");
      if (q.open === false) w.clauses.push("ended_at IS NOT NULL");
      overlap(w, "started_at", "ended_at", q.from, q.to);
      const rows = await sql.all(
        `SELECT excursion_id, data FROM excursions ${w.text()} ORDER BY started_at, excursion_id${c}`,
        w.params,
      );
      return parse<ExcursionRecord>("excursions", "excursionId", rows, "excursion_id");
    },
    async upsertGap(g: GapRecordRow) {
      await sql.run(
        `INSERT INTO gaps (agent_id, gap_id, site_id, from_observed_at, to_observed_at, data)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (agent_id, gap_id) DO UPDATE SET site_id = excluded.site_id,
           from_observed_at = excluded.from_observed_at, to_observed_at = excluded.to_observed_at, data = excluded.data`,
        [g.agentId, g.gapId, g.siteId, g.fromObservedAt, g.toObservedAt, js(g)],
      );
    },
    async listGaps(q: GapQuery) {
      const w = where();
      if (q.siteId !== undefined) w.add("site_id = ?", q.siteId);
      if (q.agentId !== undefined) w.add("agent_id = ?", q.agentId);
      overlap(w, "from_observed_at", "to_observed_at", q.from, q.to);
      const rows = await sql.all(
        `SELECT gap_id, data FROM gaps ${w.text()} ORDER BY from_observed_at, agent_id${c}, gap_id${c}`,
        w.params,
      );
      const gaps = parse<GapRecordRow>("gaps", "gapId", rows, "gap_id");
      // Gaps are few; a unit filter over the JSON list is cheaper than a join table.
      return q.unitId === undefined
        ? gaps
        : gaps.filter((g) => Array.isArray(g.unitIds) && g.unitIds.includes(q.unitId as string));
    },
    async close() {},
  };
}
