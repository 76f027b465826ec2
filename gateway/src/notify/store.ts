/**
 * Notification records on the records database (SQLite or PostgreSQL, through the SQL seam):
 * who was told about an alarm, when, on which channel, and what came of it — the answer to an
 * inspector's "who was told, when, how", for the alarm's timeline and its excursion report.
 *
 * Records are appended once by id: the escalation flow retries a report until the gateway has
 * it, so the same record arriving twice is one row; the same id with other content is refused.
 */
import type { NotificationRecord, NotificationStatus } from "@coldtrace/protocol";
import type { SqlDatabase, SqlExecutor } from "../storage/sql/database.ts";
import { notifyDdl } from "./schema.ts";

export { type NotificationRecord, type NotificationStatus, notificationStatus } from "@coldtrace/protocol";

export interface StoredNotification extends NotificationRecord {
  /** When the gateway received the record, epoch ms. */
  receivedAt: number;
}

interface Row {
  record_id: string;
  alarm_id: string;
  notification_id: string;
  site_id: string;
  unit_id: string | null;
  kind: NotificationRecord["kind"];
  tier: number | string;
  round: number | string;
  channel: string;
  recipient: string;
  recipient_name: string;
  address: string;
  status: NotificationStatus;
  attempt: number | string;
  at: number | string;
  error: string | null;
  provider_id: string | null;
  received_at: number | string;
}

function fromRow(r: Row): StoredNotification {
  return {
    recordId: r.record_id,
    alarmId: r.alarm_id,
    notificationId: r.notification_id,
    siteId: r.site_id,
    ...(r.unit_id === null ? {} : { unitId: r.unit_id }),
    kind: r.kind,
    tier: Number(r.tier),
    round: Number(r.round),
    channel: r.channel,
    recipient: r.recipient,
    recipientName: r.recipient_name,
    address: r.address,
    status: r.status,
    attempt: Number(r.attempt),
    at: Number(r.at),
    ...(r.error === null ? {} : { error: r.error }),
    ...(r.provider_id === null ? {} : { providerId: r.provider_id }),
    receivedAt: Number(r.received_at),
  };
}

const same = (a: NotificationRecord, b: NotificationRecord) => {
  const keys: (keyof NotificationRecord)[] = [
    "alarmId",
    "notificationId",
    "status",
    "attempt",
    "at",
    "channel",
    "recipient",
  ];
  return keys.every((k) => a[k] === b[k]);
};

export interface NotificationStore {
  /** Append a record. `duplicate`: the same record was already there; `conflict`: another one is. */
  record(r: NotificationRecord, receivedAt: number): Promise<"created" | "duplicate" | "conflict">;
  /** An alarm's records, in the order they happened. */
  list(alarmId: string): Promise<StoredNotification[]>;
}

export async function createNotificationStore(sql: SqlDatabase): Promise<NotificationStore> {
  await sql.migrate("notify", [notifyDdl]);
  const byId = async (ex: SqlExecutor, id: string) =>
    (await ex.all<Row>("SELECT * FROM alarm_notifications WHERE record_id = ?", [id])).map(fromRow)[0];
  return {
    async record(r, receivedAt) {
      const inserted = await sql.run(
        `INSERT INTO alarm_notifications (record_id, alarm_id, notification_id, site_id, unit_id, kind, tier, round,
           channel, recipient, recipient_name, address, status, attempt, at, error, provider_id, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (record_id) DO NOTHING`,
        [
          r.recordId,
          r.alarmId,
          r.notificationId,
          r.siteId,
          r.unitId ?? null,
          r.kind,
          r.tier,
          r.round,
          r.channel,
          r.recipient,
          r.recipientName,
          r.address,
          r.status,
          r.attempt,
          r.at,
          r.error ?? null,
          r.providerId ?? null,
          receivedAt,
        ],
      );
      if (inserted === 1) return "created";
      const prev = await byId(sql, r.recordId);
      return prev && same(prev, r) ? "duplicate" : "conflict";
    },
    async list(alarmId) {
      return (
        await sql.all<Row>("SELECT * FROM alarm_notifications WHERE alarm_id = ? ORDER BY at, record_id", [
          alarmId,
        ])
      ).map(fromRow);
    },
  };
}
