/**
 * What the fleet module keeps in the records database: per agent, the desired configuration
 * the gateway last sent (with every version ever sent, for the record), and the agent's last
 * configuration report. Plain statements through the SQL seam, the same on SQLite and PostgreSQL.
 */
import type { ConfigReported } from "@coldtrace/protocol";
import type { SqlExecutor } from "../storage/sql/database.ts";

export const fleetV1 = `
CREATE TABLE IF NOT EXISTS fleet_config_desired (
  agent_id TEXT PRIMARY KEY,
  site_id TEXT NOT NULL,
  version BIGINT NOT NULL,
  document_hash TEXT NOT NULL,
  document TEXT NOT NULL,
  issued_at BIGINT NOT NULL,
  issued_by TEXT,
  grace_ms BIGINT
);
CREATE TABLE IF NOT EXISTS fleet_config_sent (
  agent_id TEXT NOT NULL,
  version BIGINT NOT NULL,
  site_id TEXT NOT NULL,
  document_hash TEXT NOT NULL,
  issued_at BIGINT NOT NULL,
  issued_by TEXT,
  PRIMARY KEY (agent_id, version)
);
CREATE TABLE IF NOT EXISTS fleet_config_reported (
  agent_id TEXT PRIMARY KEY,
  site_id TEXT NOT NULL,
  payload TEXT NOT NULL,
  at BIGINT NOT NULL,
  received_at BIGINT NOT NULL
);`;

export interface DesiredRow {
  agentId: string;
  siteId: string;
  version: number;
  documentHash: string;
  document: unknown;
  issuedAt: number;
  issuedBy: string | null;
  graceMs: number | null;
}

export interface ReportedRow {
  agentId: string;
  siteId: string;
  report: ConfigReported;
  receivedAt: number;
}

interface RawDesired {
  agent_id: string;
  site_id: string;
  version: number;
  document_hash: string;
  document: string;
  issued_at: number;
  issued_by: string | null;
  grace_ms: number | null;
}

const desired = (r: RawDesired): DesiredRow => ({
  agentId: r.agent_id,
  siteId: r.site_id,
  version: Number(r.version),
  documentHash: r.document_hash,
  document: JSON.parse(r.document) as unknown,
  issuedAt: Number(r.issued_at),
  issuedBy: r.issued_by,
  graceMs: r.grace_ms === null ? null : Number(r.grace_ms),
});

export async function listDesired(sql: SqlExecutor): Promise<DesiredRow[]> {
  return (await sql.all<RawDesired>("SELECT * FROM fleet_config_desired ORDER BY agent_id")).map(desired);
}

export async function getDesired(sql: SqlExecutor, agentId: string): Promise<DesiredRow | undefined> {
  const rows = await sql.all<RawDesired>("SELECT * FROM fleet_config_desired WHERE agent_id = ?", [agentId]);
  return rows[0] ? desired(rows[0]) : undefined;
}

export async function saveDesired(tx: SqlExecutor, d: DesiredRow): Promise<void> {
  await tx.run(
    `INSERT INTO fleet_config_desired (agent_id, site_id, version, document_hash, document, issued_at, issued_by, grace_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (agent_id) DO UPDATE SET site_id = excluded.site_id, version = excluded.version,
       document_hash = excluded.document_hash, document = excluded.document, issued_at = excluded.issued_at,
       issued_by = excluded.issued_by, grace_ms = excluded.grace_ms`,
    [
      d.agentId,
      d.siteId,
      d.version,
      d.documentHash,
      JSON.stringify(d.document),
      d.issuedAt,
      d.issuedBy,
      d.graceMs,
    ],
  );
  await tx.run(
    "INSERT INTO fleet_config_sent (agent_id, version, site_id, document_hash, issued_at, issued_by) VALUES (?, ?, ?, ?, ?, ?)",
    [d.agentId, d.version, d.siteId, d.documentHash, d.issuedAt, d.issuedBy],
  );
}

interface RawReported {
  agent_id: string;
  site_id: string;
  payload: string;
  received_at: number;
}

const reported = (r: RawReported): ReportedRow => ({
  agentId: r.agent_id,
  siteId: r.site_id,
  report: JSON.parse(r.payload) as ConfigReported,
  receivedAt: Number(r.received_at),
});

export async function listReported(sql: SqlExecutor): Promise<ReportedRow[]> {
  return (await sql.all<RawReported>("SELECT * FROM fleet_config_reported ORDER BY agent_id")).map(reported);
}

export async function getReported(sql: SqlExecutor, agentId: string): Promise<ReportedRow | undefined> {
  const rows = await sql.all<RawReported>("SELECT * FROM fleet_config_reported WHERE agent_id = ?", [
    agentId,
  ]);
  return rows[0] ? reported(rows[0]) : undefined;
}

/**
 * Keeps the agent's latest report. Arrival order decides, not the report's `at` (an agent's
 * clock may be wrong): MQTT keeps one publisher's messages on one topic in order, and a
 * retained copy delivered again at subscribe time is the latest one.
 */
export async function saveReported(sql: SqlExecutor, r: ReportedRow): Promise<void> {
  await sql.run(
    `INSERT INTO fleet_config_reported (agent_id, site_id, payload, at, received_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (agent_id) DO UPDATE SET site_id = excluded.site_id, payload = excluded.payload,
       at = excluded.at, received_at = excluded.received_at`,
    [r.agentId, r.siteId, JSON.stringify(r.report), r.report.at, r.receivedAt],
  );
}
