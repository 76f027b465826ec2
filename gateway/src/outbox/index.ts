/**
 * The gateway's transactional event outbox: every event the gateway publishes (lot events,
 * retained eligibility states, and any other contract kind) is first a row in the record
 * database, written in the SAME transaction as the state change it announces. A dispatcher
 * then publishes the rows at QoS 1, oldest first, and marks a row sent only after its PUBACK.
 *
 *   state change ─┐ one transaction          dispatcher (one per gateway)
 *   outbox row ───┘──▶ event_outbox ──▶ publish QoS 1 ──▶ PUBACK ──▶ sent_at = now
 *                                       ▲ unsent rows again after a broker or gateway restart
 *
 * Guarantees: nothing committed is lost (a row stays until acknowledged); a resend carries the
 * same `eventId` (the row holds the encoded payload), so consumers dedupe on it; rows go out
 * in commit order and a batch must be fully acknowledged before the next one is sent, so the
 * events of one lot (one topic) keep their lotSeq order (MQTT 3.1.1 §4.6: ordered topics).
 */
import { encodePayload, type TopicKind, topicRules } from "@coldtrace/protocol";
import type { MqttClient } from "mqtt";
import type pino from "pino";
import type { Clock } from "../kernel/clock.ts";
import { type RecordDb, type SqlDatabase, type SqlExecutor, sqlDatabase } from "../storage/sql/database.ts";

export interface OutboxRow {
  id: number;
  eventId: string;
  kind: TopicKind;
  topic: string;
  payload: string;
  retain: boolean;
  createdAt: number;
  sentAt: number | null;
}

export interface DispatcherOptions {
  /** Rows published per round; the next round starts after every PUBACK of this one. Default 100. */
  batchSize?: number;
  /** Poll interval for rows enqueued by other processes. Default 1000 ms. */
  pollMs?: number;
  clock?: Clock;
}

export interface Dispatcher {
  /** Wake the dispatcher now (call after a transaction with outbox rows commits). */
  kick(): void;
  /** Resolves when no unsent row is left (or the dispatcher stopped). */
  drained(): Promise<void>;
  stop(): Promise<void>;
}

export interface EventOutbox {
  /** Create the outbox table if needed. Idempotent. */
  init(): Promise<void>;
  /**
   * Add an event inside the caller's transaction (`tx` from `SqlDatabase.transaction`, on the
   * same database). The payload is validated against the contract now (CT_WIRE_INVALID), so
   * a bad event fails the caller's transaction instead of the broker. The same eventId twice is
   * stored once. Retain follows the contract's topic rules (eligibility is retained).
   */
  enqueue(tx: SqlExecutor, kind: TopicKind, topic: string, payload: unknown, eventId: string): Promise<void>;
  /**
   * Clear a retained topic (an empty retained message, MQTT 3.1.1 §3.3.1.3) inside the caller's
   * transaction, in order with the other rows: e.g. a retained state for something the
   * database no longer has. Only for kinds the contract retains.
   */
  enqueueClear(tx: SqlExecutor, kind: TopicKind, topic: string, eventId: string): Promise<void>;
  /** Wake running dispatchers of this outbox. */
  notify(): void;
  /** Number of unsent rows. */
  pending(): Promise<number>;
  /** Rows, oldest first (for tests and the console). */
  rows(opts?: { unsentOnly?: boolean; limit?: number }): Promise<OutboxRow[]>;
  startDispatcher(client: MqttClient, log: pino.Logger, opts?: DispatcherOptions): Dispatcher;
  /** Delete rows sent before `sentBefore` (epoch ms); unsent rows are never deleted. Returns the count. */
  prune(sentBefore: number): Promise<number>;
}

/**
 * The outbox as a module sees it (the extension contract's `ctx.outbox`): the gateway owns
 * the table (`init`) and runs the one dispatcher; a module enqueues and reads.
 */
export type Outbox = Omit<EventOutbox, "init" | "startDispatcher">;

const DDL_SQLITE = `
CREATE TABLE IF NOT EXISTS event_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  topic TEXT NOT NULL,
  payload TEXT NOT NULL,
  retain INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  sent_at BIGINT
);
CREATE INDEX IF NOT EXISTS event_outbox_unsent ON event_outbox (id) WHERE sent_at IS NULL;`;

const DDL_PG = DDL_SQLITE.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY");

interface RawRow {
  id: number;
  event_id: string;
  kind: string;
  topic: string;
  payload: string;
  retain: number | boolean;
  created_at: number;
  sent_at: number | null;
}

function toRow(r: RawRow): OutboxRow {
  return {
    id: Number(r.id),
    eventId: r.event_id,
    kind: r.kind as TopicKind,
    topic: r.topic,
    payload: r.payload,
    retain: r.retain === true || r.retain === 1,
    createdAt: Number(r.created_at),
    sentAt: r.sent_at === null ? null : Number(r.sent_at),
  };
}

export function createEventOutbox(db: RecordDb | SqlDatabase, clock: Clock = Date): EventOutbox {
  const sql: SqlDatabase = "transaction" in db ? db : sqlDatabase(db);
  const wakers = new Set<() => void>();

  const outbox: EventOutbox = {
    async init() {
      await sql.migrate("outbox", [sql.kind === "sqlite" ? DDL_SQLITE : DDL_PG]);
    },

    async enqueue(tx, kind, topic, payload, eventId) {
      const bytes = encodePayload(kind, payload as never).toString("utf8");
      await tx.run(
        `INSERT INTO event_outbox (event_id, kind, topic, payload, retain, created_at)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`,
        [eventId, kind, topic, bytes, topicRules[kind].retain ? 1 : 0, clock.now()],
      );
    },

    async enqueueClear(tx, kind, topic, eventId) {
      if (!topicRules[kind].retain) throw new Error(`${kind} is not a retained topic kind; nothing to clear`);
      await tx.run(
        `INSERT INTO event_outbox (event_id, kind, topic, payload, retain, created_at)
         VALUES (?, ?, ?, '', 1, ?) ON CONFLICT (event_id) DO NOTHING`,
        [eventId, kind, topic, clock.now()],
      );
    },

    notify() {
      for (const wake of wakers) wake();
    },

    async pending() {
      const [r] = await sql.all<{ n: number }>(
        `SELECT COUNT(*) AS n FROM event_outbox WHERE sent_at IS NULL`,
      );
      return Number(r?.n ?? 0);
    },

    async rows(opts = {}) {
      const where = opts.unsentOnly ? "WHERE sent_at IS NULL" : "";
      const rows = await sql.all<RawRow>(`SELECT * FROM event_outbox ${where} ORDER BY id LIMIT ?`, [
        opts.limit ?? 1_000_000,
      ]);
      return rows.map(toRow);
    },

    prune(sentBefore) {
      return sql.run(`DELETE FROM event_outbox WHERE sent_at IS NOT NULL AND sent_at < ?`, [sentBefore]);
    },

    startDispatcher(client, parentLog, opts = {}) {
      const log = parentLog.child({ component: "outbox" });
      const batchSize = opts.batchSize ?? 100;
      const pollMs = opts.pollMs ?? 1000;
      const now = opts.clock ?? clock;
      let stopped = false;
      let wake: (() => void) | undefined;
      let idleWaiters: Array<() => void> = [];
      const kick = () => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      wakers.add(kick);
      const onConnect = () => kick();
      client.on("connect", onConnect);

      const sleep = (ms: number) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            wake = undefined;
            resolve();
          }, ms);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });

      const publish = (row: OutboxRow) =>
        new Promise<boolean>((resolve) => {
          client.publish(row.topic, row.payload, { qos: 1, retain: row.retain }, (err) => {
            if (err) log.warn({ err, eventId: row.eventId }, "outbox publish failed; will resend");
            resolve(!err);
          });
        });

      const loop = async () => {
        while (!stopped) {
          if (!client.connected) {
            await sleep(pollMs);
            continue;
          }
          let batch: OutboxRow[];
          try {
            batch = (
              await sql.all<RawRow>(`SELECT * FROM event_outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?`, [
                batchSize,
              ])
            ).map(toRow);
          } catch (err) {
            log.error({ err }, "outbox read failed");
            await sleep(pollMs);
            continue;
          }
          if (batch.length === 0) {
            const waiters = idleWaiters;
            idleWaiters = [];
            for (const w of waiters) w();
            await sleep(pollMs);
            continue;
          }
          // All rows of the round go out in order; mqtt.js keeps unacknowledged QoS 1 packets
          // and resends them after a reconnect, so a callback fires only on PUBACK (or end).
          const acked = await Promise.race([
            Promise.all(batch.map(publish)),
            new Promise<null>((resolve) => {
              stopSignal = () => resolve(null);
            }),
          ]);
          if (acked === null) break;
          const ok = batch.filter((_, i) => acked[i]);
          if (ok.length > 0) {
            const ids = ok.map((r) => r.id);
            try {
              await sql.run(
                `UPDATE event_outbox SET sent_at = ? WHERE id IN (${ids.map(() => "?").join(",")})`,
                [now.now(), ...ids],
              );
              log.debug({ count: ok.length, lastEventId: ok.at(-1)?.eventId }, "outbox rows sent");
            } catch (err) {
              // Not marked: they go out again with the same eventId. Harmless for consumers.
              log.error({ err }, "outbox mark-sent failed");
            }
          }
          if (ok.length < batch.length) await sleep(pollMs);
        }
        const waiters = idleWaiters;
        idleWaiters = [];
        for (const w of waiters) w();
      };
      let stopSignal: () => void = () => undefined;
      const done = loop().catch((err) => log.error({ err }, "outbox dispatcher crashed"));
      log.info({ batchSize }, "outbox dispatcher started");

      return {
        kick,
        drained: () =>
          new Promise<void>((resolve) => {
            if (stopped) return resolve();
            idleWaiters.push(resolve);
            kick();
          }),
        async stop() {
          stopped = true;
          wakers.delete(kick);
          client.removeListener("connect", onConnect);
          stopSignal();
          kick();
          await done;
          log.info({}, "outbox dispatcher stopped");
        },
      };
    },
  };
  return outbox;
}
