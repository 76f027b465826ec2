/**
 * The notify module's table, one DDL for SQLite and PostgreSQL (BIGINT epoch ms). Version 1 of
 * module "notify" in the migration runner (storage/sql/migrate.ts); a change is a new script.
 *
 *   alarm_notifications   one row per notification attempt (sent, retried, failed) or
 *                         acknowledgement reported by the escalation flow, keyed by the flow's
 *                         record id; never updated, never deleted (an audit record)
 */
export const notifyDdl = `
CREATE TABLE IF NOT EXISTS alarm_notifications (
  record_id TEXT PRIMARY KEY,
  alarm_id TEXT NOT NULL,
  notification_id TEXT NOT NULL,
  site_id TEXT NOT NULL,
  unit_id TEXT,
  kind TEXT NOT NULL,
  tier INTEGER NOT NULL,
  round INTEGER NOT NULL,
  channel TEXT NOT NULL,
  recipient TEXT NOT NULL,
  recipient_name TEXT NOT NULL,
  address TEXT NOT NULL,
  status TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  at BIGINT NOT NULL,
  error TEXT,
  provider_id TEXT,
  received_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS alarm_notifications_alarm ON alarm_notifications (alarm_id, at);
`;
