/**
 * The durable state of the Coldtrace nodes, in one SQLite file beside the Node-RED user
 * directory (node:sqlite, WAL): open escalations, and work queues whose rows survive a
 * Node-RED restart or crash.
 *
 *   work(queue, id)   id = the idempotency key (notificationId+attempt, ERP documentId, eventId):
 *                     inserting an id twice is one row, so an event redelivered by the broker
 *                     after a restart is never sent twice.
 *      pending ──ok──▶ done
 *         │ └─fail─▶ pending (next_at = now + backoff) … ──too many──▶ dead ──replay──▶ pending
 *         └─bad content─▶ rejected ──retry──▶ pending
 *
 * Within one `part` (e.g. one lot at one site) rows are worked strictly in order: a later row
 * waits while an earlier one is pending, dead or rejected, so an ERP never gets "unhold" before
 * the "hold" it undoes.
 *
 * Node-RED's own context stores keep JSON in memory and flush it every 30 s; a notification
 * record or an ERP hold must not depend on that, hence a database.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";

export type WorkStatus = "pending" | "done" | "dead" | "rejected";

export interface WorkItem<T = unknown> {
  queue: string;
  id: string;
  part: string;
  seq: number;
  body: T;
  status: WorkStatus;
  attempts: number;
  nextAt: number;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

interface Row {
  queue: string;
  id: string;
  part: string;
  seq: number;
  body: string;
  status: WorkStatus;
  attempts: number;
  next_at: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

const DDL = `
CREATE TABLE IF NOT EXISTS work (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  id TEXT NOT NULL,
  part TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (queue, id)
);
CREATE INDEX IF NOT EXISTS work_due ON work (queue, status, next_at);
CREATE INDEX IF NOT EXISTS work_part ON work (queue, part, seq);
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS escalations (
  key TEXT PRIMARY KEY,
  record TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
`;

const open = new Map<string, { db: DatabaseSync; users: number }>();

/** One connection per file per process, shared by the nodes using it; closed with the last. */
export class FlowsStore {
  readonly file: string;
  readonly db: DatabaseSync;
  #closed = false;

  private constructor(file: string, db: DatabaseSync) {
    this.file = file;
    this.db = db;
  }

  static open(file: string): FlowsStore {
    let entry = open.get(file);
    if (!entry) {
      mkdirSync(path.dirname(file), { recursive: true });
      const db = new DatabaseSync(file);
      db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;");
      db.exec(DDL);
      entry = { db, users: 0 };
      open.set(file, entry);
    }
    entry.users++;
    return new FlowsStore(file, entry.db);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const entry = open.get(this.file);
    if (!entry) return;
    entry.users--;
    if (entry.users === 0) {
      open.delete(this.file);
      entry.db.close();
    }
  }

  /** A small persisted value (e.g. the last eligibility seen per lot). */
  get<T>(key: string): T | undefined {
    const r = this.db.prepare("SELECT value FROM kv WHERE key = ?").get(key) as { value: string } | undefined;
    return r ? (JSON.parse(r.value) as T) : undefined;
  }

  set(key: string, value: unknown): void {
    this.db
      .prepare(
        "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      )
      .run(key, JSON.stringify(value));
  }

  queue<T>(name: string): WorkQueue<T> {
    return new WorkQueue<T>(this.db, name);
  }
}

function item<T>(r: Row): WorkItem<T> {
  return {
    queue: r.queue,
    id: r.id,
    part: r.part,
    seq: Number(r.seq),
    body: JSON.parse(r.body) as T,
    status: r.status,
    attempts: Number(r.attempts),
    nextAt: Number(r.next_at),
    lastError: r.last_error,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

export class WorkQueue<T> {
  readonly #db: DatabaseSync;
  readonly name: string;

  constructor(db: DatabaseSync, name: string) {
    this.#db = db;
    this.name = name;
  }

  /** Add a row unless its id is known. Returns false for a duplicate. */
  add(id: string, body: T, now: number, part = id): boolean {
    const r = this.#db
      .prepare(
        `INSERT INTO work (queue, id, part, body, status, attempts, next_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?) ON CONFLICT (queue, id) DO NOTHING`,
      )
      .run(this.name, id, part, JSON.stringify(body), now, now, now);
    return Number(r.changes) === 1;
  }

  /** Put a row (new or known, e.g. a corrected document) back to pending with this body. */
  put(id: string, body: T, now: number, part = id, nextAt = now): void {
    this.#db
      .prepare(
        `INSERT INTO work (queue, id, part, body, status, attempts, next_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)
         ON CONFLICT (queue, id) DO UPDATE SET body = excluded.body, status = 'pending', attempts = 0,
           next_at = excluded.next_at, last_error = NULL, updated_at = excluded.updated_at`,
      )
      .run(this.name, id, part, JSON.stringify(body), nextAt, now, now);
  }

  get(id: string): WorkItem<T> | undefined {
    const r = this.#db.prepare("SELECT * FROM work WHERE queue = ? AND id = ?").get(this.name, id) as
      | Row
      | undefined;
    return r ? item<T>(r) : undefined;
  }

  /** Pending rows due at `now`, oldest first, each the first unfinished row of its part. */
  due(now: number, limit = 50): WorkItem<T>[] {
    const rows = this.#db
      .prepare(
        `SELECT * FROM work w WHERE w.queue = ? AND w.status = 'pending' AND w.next_at <= ?
           AND NOT EXISTS (SELECT 1 FROM work e WHERE e.queue = w.queue AND e.part = w.part
                           AND e.seq < w.seq AND e.status <> 'done')
         ORDER BY w.seq LIMIT ?`,
      )
      .all(this.name, now, limit) as unknown as Row[];
    return rows.map((r) => item<T>(r));
  }

  done(id: string, now: number): void {
    this.#set(id, "done", null, now);
  }

  /** A failed attempt to try again at `nextAt`. */
  retry(id: string, error: string, nextAt: number, now: number): void {
    this.#db
      .prepare(
        `UPDATE work SET attempts = attempts + 1, last_error = ?, next_at = ?, updated_at = ? WHERE queue = ? AND id = ?`,
      )
      .run(error, nextAt, now, this.name, id);
  }

  /** Given up after too many attempts: kept for someone to see and replay. */
  dead(id: string, error: string, now: number): void {
    this.#db
      .prepare(
        `UPDATE work SET status = 'dead', attempts = attempts + 1, last_error = ?, updated_at = ? WHERE queue = ? AND id = ?`,
      )
      .run(error, now, this.name, id);
  }

  /** Bad content: kept with the reason until corrected or retried. */
  reject(id: string, error: string, now: number): void {
    this.#set(id, "rejected", error, now);
  }

  /** A dead or rejected row back to pending, due now. */
  replay(id: string, now: number): boolean {
    const r = this.#db
      .prepare(
        `UPDATE work SET status = 'pending', attempts = 0, next_at = ?, updated_at = ?
         WHERE queue = ? AND id = ? AND status IN ('dead', 'rejected')`,
      )
      .run(now, now, this.name, id);
    return Number(r.changes) === 1;
  }

  list(status?: WorkStatus): WorkItem<T>[] {
    const rows = (status === undefined
      ? this.#db.prepare("SELECT * FROM work WHERE queue = ? ORDER BY seq").all(this.name)
      : this.#db
          .prepare("SELECT * FROM work WHERE queue = ? AND status = ? ORDER BY seq")
          .all(this.name, status)) as unknown as Row[];
    return rows.map((r) => item<T>(r));
  }

  /** Rows waiting behind an unfinished earlier row of the same part. */
  blockedBehind(id: string): number {
    const r = this.#db
      .prepare(
        `SELECT COUNT(*) AS n FROM work w, work e WHERE e.queue = ? AND e.id = ? AND w.queue = e.queue
           AND w.part = e.part AND w.seq > e.seq AND w.status = 'pending'`,
      )
      .get(this.name, id) as { n: number };
    return Number(r.n);
  }

  /** Delete done rows older than `before` (the ids' idempotency is kept that long). */
  prune(before: number): number {
    const r = this.#db
      .prepare("DELETE FROM work WHERE queue = ? AND status = 'done' AND updated_at < ?")
      .run(this.name, before);
    return Number(r.changes);
  }

  #set(id: string, status: WorkStatus, error: string | null, now: number): void {
    this.#db
      .prepare("UPDATE work SET status = ?, last_error = ?, updated_at = ? WHERE queue = ? AND id = ?")
      .run(status, error, now, this.name, id);
  }
}

/** Exponential backoff: base, 2×base, 4×base … capped at maxMs. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}
