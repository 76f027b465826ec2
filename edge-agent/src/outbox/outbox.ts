/**
 * The durable outbox: every reading is a row here before it is published, and leaves only
 * after the broker's PUBACK (docs/protocol.md "Ordering and idempotency").
 *
 *   acquisition ─▶ append() ── one transaction: seq := meta.nextSeq++, INSERT reading ──▶ SQLite (WAL)
 *                     │                                                                    │
 *                     └─ over the size bound? evict oldest chunk + INSERT gap record ◀──────┘
 *   publisher ◀─ pendingReadings()/pendingGaps() ── PUBACK ─▶ ack()/ackGap() deletes the rows
 *
 * The sequence counter lives in the same database and is bumped in the same transaction as
 * the insert, so a `kill -9` or a power cut can never reuse or skip a number. Journal mode is
 * WAL with synchronous=NORMAL by default: a commit is durable once the WAL is checkpointed or
 * the OS flushes it, which trades at most the last moments before a power cut for far fewer
 * fsyncs on an SD card (https://www.sqlite.org/pragma.html#pragma_synchronous). FULL is
 * available for boxes on reliable storage.
 *
 * Power loss and sequence numbers: with synchronous=NORMAL the last commits before a power cut
 * can roll back, counter included, while their readings may already be at the gateway; handing
 * those numbers out again would make the gateway drop new readings as duplicates. So sequence
 * numbers are *reserved* in blocks by a FULL-synced write before they are used, and after an
 * unclean stop across a reboot (the kernel's boot_id changed: the page cache, and with it the
 * WAL tail, may be gone) numbering resumes after the reservation. The skipped numbers were never
 * used, and the birth's `nextSeq` announces the jump. A `kill -9` keeps the WAL (same boot), so
 * numbering simply continues.
 *
 * Gap records are kept in their own table. Evictions that follow each other without a
 * surviving reading between them (an outage on a full outbox: one per poll cycle) extend the
 * same record as long as it has not been handed to the publisher yet (`sealGap`), so one
 * outage is one gap record. The table is bounded (`maxGapRecords`): past it, the two oldest
 * records are merged into one that covers both (never dropped: a gap is never silent). A
 * merged record may cover one the gateway already has; it then sees the range twice, which
 * over-reports and never under-reports.
 *
 * Each reading also keeps the monotonic clock (CLOCK_MONOTONIC, shared by every process of one
 * boot) at which it was taken, the boot it was taken in, and its time quality, so readings
 * taken while the wall clock was not synchronised can be re-anchored once it is (`reanchor`).
 *
 * A small `status` table holds what the running agent wants `coldtrace-agent status` to see
 * (WAL lets that reader in while the agent writes).
 */
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { ColdtraceError, type GapRecord, type Quality, type TimeQuality } from "@coldtrace/protocol";

export type SynchronousMode = "OFF" | "NORMAL" | "FULL";

/** A reading as acquisition hands it over, before it has a sequence number. */
export interface NewReading {
  probeId: string;
  unitId: string;
  observedAt: number;
  tempC: number | null;
  quality: Quality;
  /** CLOCK_MONOTONIC ms when it was taken (same clock in every process of a boot). */
  monoMs?: number;
  /** Absent: the wall clock was trusted when it was taken. */
  timeQuality?: TimeQuality;
}

/** A reading stored in the outbox, with its per-agent sequence number. */
export interface StoredReading {
  seq: number;
  probeId: string;
  unitId: string;
  observedAt: number;
  tempC: number | null;
  quality: Quality;
  /** null: the wall clock was trusted. */
  timeQuality: TimeQuality | null;
}

export interface OutboxStats {
  /** Readings waiting for a PUBACK. */
  depth: number;
  /** Event time of the oldest reading waiting, or null when empty. */
  oldestObservedAt: number | null;
  /** Readings dropped by the size bound since the outbox was created. */
  evictedTotal: number;
  /** Gap records waiting for a PUBACK. */
  gapDepth: number;
  /** The sequence number the next reading will carry. */
  nextSeq: number;
}

export interface OutboxOptions {
  /** Path of the SQLite file (created if missing). */
  path: string;
  agentId: string;
  /** Size bound in readings; when exceeded, the oldest are evicted and a gap record is written. */
  maxReadings: number;
  /** How many readings one eviction drops at once (default 1% of maxReadings, at least 1), so a full outbox does not write a gap record per reading. */
  evictChunk?: number;
  synchronous?: SynchronousMode;
  /** Event-time source for gap records' `at`; defaults to Date.now. */
  now?: () => number;
  /** Sequence numbers reserved per FULL-synced write (default 10,000). */
  seqReserveBlock?: number;
  /** Most gap records kept; past it the two oldest are merged (default 1000). */
  maxGapRecords?: number;
  /** Identity of the current boot; defaults to /proc/sys/kernel/random/boot_id. Tests inject it. */
  bootId?: string;
}

function currentBootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    // Unknown: treat every unclean stop as a possible power loss.
    return `unknown-${process.pid}-${Date.now()}`;
  }
}

export interface AppendResult {
  readings: StoredReading[];
  /** Gap records this append created because the size bound was reached. */
  gaps: GapRecord[];
  /** Gap records this append extended (contiguous evictions, not yet handed to the publisher). */
  extendedGaps: GapRecord[];
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS readings (
  seq INTEGER PRIMARY KEY,
  unit_id TEXT NOT NULL,
  probe_id TEXT NOT NULL,
  observed_at INTEGER NOT NULL,
  temp_c REAL,
  quality TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS gaps (gap_id TEXT PRIMARY KEY, payload TEXT NOT NULL, created_at INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS status (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL) STRICT;
INSERT OR IGNORE INTO meta (key, value) VALUES ('nextSeq', 1), ('evictedTotal', 0), ('gapCounter', 0),
  ('seqReservedTo', 0), ('cleanShutdown', 1);
CREATE TABLE IF NOT EXISTS boot (id INTEGER PRIMARY KEY CHECK (id = 1), boot_id TEXT NOT NULL) STRICT;
INSERT OR IGNORE INTO meta (key, value) VALUES ('bootSeq', 0);
`;

/** Columns added after the first release: added in place to an existing outbox file. */
const ADDED_COLUMNS: { table: string; column: string; decl: string }[] = [
  { table: "readings", column: "mono_ms", decl: "REAL" },
  { table: "readings", column: "boot_seq", decl: "INTEGER" },
  { table: "readings", column: "time_quality", decl: "TEXT" },
  { table: "gaps", column: "sealed", decl: "INTEGER NOT NULL DEFAULT 0" },
];

function addMissingColumns(db: DatabaseSync): void {
  for (const { table, column, decl } of ADDED_COLUMNS) {
    const columns = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
    if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${decl}`);
  }
}

type GapRow = Omit<GapRecord, "v"> & { v: 1 };

/** Sorted union of two id lists. */
const union = (a: readonly string[], b: readonly string[]) => [...new Set([...a, ...b])].sort();

/**
 * Make a reading fit the contract before it is stored, so what the outbox holds can be sent
 * without re-validating on the replay path: event time as integer ms, and a temperature only
 * when it is a finite number within the contract's bounds (docs/protocol.md "Telemetry").
 * A value the probe reported as ok but that is not a usable temperature becomes out_of_range.
 */
function contractReading(r: NewReading): Omit<StoredReading, "seq"> {
  const { tempC } = r;
  const usable = tempC !== null && Number.isFinite(tempC) && tempC >= -273.15 && tempC <= 1000;
  return {
    probeId: r.probeId,
    unitId: r.unitId,
    observedAt: Math.round(r.observedAt),
    tempC: usable ? tempC : null,
    quality: r.quality === "ok" && !usable ? "out_of_range" : r.quality,
    timeQuality: r.timeQuality ?? null,
  };
}

export class Outbox {
  readonly path: string;
  readonly maxReadings: number;
  private readonly db: DatabaseSync;
  private readonly agentId: string;
  private readonly evictChunk: number;
  private readonly now: () => number;
  private depthCount: number;
  private readonly synchronous: SynchronousMode;
  private readonly reserveBlock: number;
  private readonly maxGapRecords: number;
  private reservedTo = 0;
  /** Numbers this boot of the box (changes whenever the kernel's boot_id does). */
  readonly bootSeq: number;
  /** Sequence numbers skipped at open after an unclean stop across a reboot (0 if none). */
  readonly skippedSeqs: number = 0;
  private readonly stmts: {
    getMeta: StatementSync;
    setMeta: StatementSync;
    insert: StatementSync;
    remove: StatementSync;
    pendingAfter: StatementSync;
    pendingRange: StatementSync;
    oldest: StatementSync;
    evictRange: StatementSync;
    evictDelete: StatementSync;
    insertGap: StatementSync;
    pendingGaps: StatementSync;
    removeGap: StatementSync;
    gapCount: StatementSync;
    latestOpenGap: StatementSync;
    updateGap: StatementSync;
    oldestGaps: StatementSync;
    sealGap: StatementSync;
    setStatus: StatementSync;
    reanchor: StatementSync;
    untrusted: StatementSync;
  };

  private constructor(db: DatabaseSync, opts: OutboxOptions) {
    this.db = db;
    this.path = opts.path;
    this.agentId = opts.agentId;
    this.maxReadings = opts.maxReadings;
    this.evictChunk = Math.max(
      1,
      Math.min(opts.maxReadings, opts.evictChunk ?? Math.floor(opts.maxReadings / 100)),
    );
    this.now = opts.now ?? Date.now;
    const s = (sql: string) => db.prepare(sql);
    this.stmts = {
      getMeta: s("SELECT value FROM meta WHERE key = ?"),
      setMeta: s("UPDATE meta SET value = ? WHERE key = ?"),
      insert: s(
        "INSERT INTO readings (seq, unit_id, probe_id, observed_at, temp_c, quality, mono_ms, boot_seq, time_quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      remove: s("DELETE FROM readings WHERE seq IN (SELECT value FROM json_each(?))"),
      pendingAfter: s(
        "SELECT seq, unit_id AS unitId, probe_id AS probeId, observed_at AS observedAt, temp_c AS tempC, quality, time_quality AS timeQuality FROM readings WHERE seq > ? ORDER BY seq LIMIT ?",
      ),
      pendingRange: s(
        "SELECT seq, unit_id AS unitId, probe_id AS probeId, observed_at AS observedAt, temp_c AS tempC, quality, time_quality AS timeQuality FROM readings WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?",
      ),
      oldest: s("SELECT observed_at FROM readings ORDER BY seq LIMIT 1"),
      evictRange: s(
        `SELECT min(seq) AS fromSeq, max(seq) AS toSeq, min(observed_at) AS fromAt, max(observed_at) AS toAt,
                count(*) AS n, json_group_array(DISTINCT unit_id) AS units, json_group_array(DISTINCT probe_id) AS probes
           FROM (SELECT * FROM readings ORDER BY seq LIMIT ?)`,
      ),
      evictDelete: s("DELETE FROM readings WHERE seq <= ?"),
      insertGap: s("INSERT INTO gaps (gap_id, payload, created_at) VALUES (?, ?, ?)"),
      pendingGaps: s("SELECT payload FROM gaps ORDER BY created_at, gap_id"),
      removeGap: s("DELETE FROM gaps WHERE gap_id = ?"),
      gapCount: s("SELECT count(*) AS n FROM gaps"),
      latestOpenGap: s(
        "SELECT payload FROM gaps WHERE sealed = 0 ORDER BY json_extract(payload, '$.toSeq') DESC LIMIT 1",
      ),
      updateGap: s("UPDATE gaps SET payload = ? WHERE gap_id = ?"),
      oldestGaps: s("SELECT payload FROM gaps ORDER BY json_extract(payload, '$.fromSeq') LIMIT 2"),
      sealGap: s("UPDATE gaps SET sealed = 1 WHERE gap_id = ?"),
      setStatus: s(
        "INSERT INTO status (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
      ),
      reanchor: s(
        `UPDATE readings SET observed_at = CAST(round(mono_ms + ?) AS INTEGER), time_quality = 'reanchored'
          WHERE boot_seq = ? AND mono_ms IS NOT NULL AND mono_ms > ? AND mono_ms <= ?
            AND time_quality IN (SELECT value FROM json_each(?))`,
      ),
      untrusted: s("SELECT count(*) AS n FROM readings WHERE time_quality IN ('unsynchronised', 'stepped')"),
    };
    this.depthCount = Number((db.prepare("SELECT count(*) AS n FROM readings").get() as { n: number }).n);
    this.synchronous = opts.synchronous ?? "NORMAL";
    this.reserveBlock = Math.max(1, opts.seqReserveBlock ?? 10_000);
    this.maxGapRecords = Math.max(1, opts.maxGapRecords ?? 1000);
    const bootId = opts.bootId ?? currentBootId();
    const lastBoot = (
      db.prepare("SELECT boot_id FROM boot WHERE id = 1").get() as { boot_id: string } | undefined
    )?.boot_id;
    const clean = this.meta("cleanShutdown") === 1;
    const nextSeq = this.meta("nextSeq");
    const reservedTo = this.meta("seqReservedTo");
    let resumeAt = nextSeq;
    if (!clean && lastBoot !== undefined && lastBoot !== bootId && reservedTo >= nextSeq) {
      resumeAt = reservedTo + 1;
      this.skippedSeqs = resumeAt - nextSeq;
    }
    this.bootSeq = this.meta("bootSeq") + (lastBoot === bootId ? 0 : 1);
    this.durably(() => {
      this.stmts.setMeta.run(this.bootSeq, "bootSeq");
      this.stmts.setMeta.run(resumeAt, "nextSeq");
      this.stmts.setMeta.run(0, "cleanShutdown");
      this.stmts.setMeta.run(resumeAt - 1 + this.reserveBlock, "seqReservedTo");
      db.prepare(
        "INSERT INTO boot (id, boot_id) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET boot_id = excluded.boot_id",
      ).run(bootId);
    });
    this.reservedTo = resumeAt - 1 + this.reserveBlock;
  }

  /** A transaction fsynced before it returns, whatever the configured synchronous mode. */
  private durably(fn: () => void): void {
    this.db.exec("PRAGMA synchronous = FULL");
    try {
      this.transaction(fn);
    } finally {
      this.db.exec(`PRAGMA synchronous = ${this.synchronous}`);
    }
  }

  /** Open (or create) the outbox file. Throws CT_OUTBOX_IO naming the file when it cannot. */
  static open(opts: OutboxOptions): Outbox {
    let db: DatabaseSync | undefined;
    try {
      // The data folder is made on first start (systemd's StateDirectory= does it too).
      if (opts.path !== ":memory:") mkdirSync(dirname(opts.path), { recursive: true });
      db = new DatabaseSync(opts.path);
      // WAL: readers (the status command) never block the writer, and commits append
      // sequentially, which is kinder to SD cards than a rollback journal.
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${opts.synchronous ?? "NORMAL"}`);
      db.exec("PRAGMA busy_timeout = 5000");
      // 1 MiB page cache instead of 2: the outbox is written at the end and read from the front.
      db.exec("PRAGMA cache_size = -1024");
      db.exec(SCHEMA);
      addMissingColumns(db);
      return new Outbox(db, opts);
    } catch (err) {
      db?.close();
      throw new ColdtraceError(
        "CT_OUTBOX_IO",
        `cannot open outbox ${opts.path}: ${(err as Error).message}`,
        { path: opts.path },
        { cause: err },
      );
    }
  }

  private meta(key: string): number {
    return Number((this.stmts.getMeta.get(key) as { value: number }).value);
  }

  private transaction<T>(fn: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.db.exec("COMMIT");
      return out;
    } catch (err) {
      this.db.exec("ROLLBACK");
      throw new ColdtraceError(
        "CT_OUTBOX_IO",
        `outbox ${this.path}: ${(err as Error).message}`,
        { path: this.path },
        { cause: err },
      );
    }
  }

  /**
   * Store readings durably, giving each the next sequence number. Counter and rows commit
   * together. When the size bound is exceeded the oldest readings are evicted and a gap record
   * describing them is stored in the same transaction.
   */
  append(readings: readonly NewReading[]): AppendResult {
    if (readings.length === 0) return { readings: [], gaps: [], extendedGaps: [] };
    const last = this.meta("nextSeq") + readings.length - 1;
    if (last > this.reservedTo) {
      // Reserve durably before any number beyond the reservation can leave the box.
      const reservedTo = last + this.reserveBlock;
      this.durably(() => this.stmts.setMeta.run(reservedTo, "seqReservedTo"));
      this.reservedTo = reservedTo;
    }
    return this.transaction(() => {
      let seq = this.meta("nextSeq");
      const stored: StoredReading[] = [];
      for (const input of readings) {
        const r = contractReading(input);
        this.stmts.insert.run(
          seq,
          r.unitId,
          r.probeId,
          r.observedAt,
          r.tempC,
          r.quality,
          input.monoMs ?? null,
          input.monoMs === undefined ? null : this.bootSeq,
          r.timeQuality,
        );
        stored.push({ ...r, seq });
        seq += 1;
      }
      this.stmts.setMeta.run(seq, "nextSeq");
      this.depthCount += stored.length;
      const gaps = new Map<string, GapRecord>();
      const extended = new Map<string, GapRecord>();
      while (this.depthCount > this.maxReadings) {
        const { gap, isNew } = this.evictOldest(
          Math.max(this.evictChunk, this.depthCount - this.maxReadings),
        );
        if (isNew || gaps.has(gap.gapId)) gaps.set(gap.gapId, gap);
        else extended.set(gap.gapId, gap);
      }
      return { readings: stored, gaps: [...gaps.values()], extendedGaps: [...extended.values()] };
    });
  }

  /**
   * Evict the `count` oldest readings and record it: the latest gap record is extended when
   * this range follows it directly and it was not handed to the publisher yet; otherwise a new
   * record. Inside a transaction.
   */
  private evictOldest(count: number): { gap: GapRecord; isNew: boolean } {
    const r = this.stmts.evictRange.get(count) as {
      fromSeq: number;
      toSeq: number;
      fromAt: number;
      toAt: number;
      n: number;
      units: string;
      probes: string;
    };
    this.stmts.evictDelete.run(r.toSeq);
    const n = Number(r.n);
    this.depthCount -= n;
    this.stmts.setMeta.run(this.meta("evictedTotal") + n, "evictedTotal");
    const at = this.now();
    const range = {
      unitIds: (JSON.parse(r.units) as string[]).sort(),
      probeIds: (JSON.parse(r.probes) as string[]).sort(),
      fromObservedAt: Number(r.fromAt),
      toObservedAt: Number(r.toAt),
      fromSeq: Number(r.fromSeq),
      toSeq: Number(r.toSeq),
      droppedCount: n,
    };
    const open = this.stmts.latestOpenGap.get() as { payload: string } | undefined;
    const last = open ? (JSON.parse(open.payload) as GapRow) : undefined;
    if (last && last.toSeq + 1 === range.fromSeq) {
      const gap = { ...merge(last, range), at };
      this.stmts.updateGap.run(JSON.stringify(gap), gap.gapId);
      return { gap, isNew: false };
    }
    const gap: GapRecord = {
      v: 1,
      agentId: this.agentId,
      gapId: this.newGapId(at),
      reason: "outbox_evicted",
      ...range,
      at,
    };
    this.stmts.insertGap.run(gap.gapId, JSON.stringify(gap), at);
    this.boundGaps(at);
    return { gap, isNew: true };
  }

  private newGapId(at: number): string {
    const counter = this.meta("gapCounter") + 1;
    this.stmts.setMeta.run(counter, "gapCounter");
    return `gap-${at}-${counter}`;
  }

  /** Past `maxGapRecords`, the two oldest records become one that covers both. */
  private boundGaps(at: number): void {
    while (Number((this.stmts.gapCount.get() as { n: number }).n) > this.maxGapRecords) {
      const [a, b] = (this.stmts.oldestGaps.all() as { payload: string }[]).map(
        (row) => JSON.parse(row.payload) as GapRow,
      );
      if (!a || !b) return;
      const gap: GapRecord = { ...merge(a, b), gapId: this.newGapId(at), at };
      this.stmts.removeGap.run(a.gapId);
      this.stmts.removeGap.run(b.gapId);
      this.stmts.insertGap.run(gap.gapId, JSON.stringify(gap), at);
    }
  }

  /** Delete readings the broker acknowledged. Unknown seqs (already evicted or acked) are ignored. */
  ack(seqs: readonly number[]): number {
    if (seqs.length === 0) return 0;
    const removed = Number(this.stmts.remove.run(JSON.stringify(seqs)).changes);
    this.depthCount -= removed;
    return removed;
  }

  /** Readings with seq > afterSeq (and < beforeSeq if given), oldest first. */
  pendingReadings(afterSeq: number, limit: number, beforeSeq?: number): StoredReading[] {
    const rows =
      beforeSeq === undefined
        ? this.stmts.pendingAfter.all(afterSeq, limit)
        : this.stmts.pendingRange.all(afterSeq, beforeSeq, limit);
    // Column aliases give StoredReading's shape directly (no per-row copy on the replay path).
    return rows as unknown as StoredReading[];
  }

  pendingGaps(): GapRecord[] {
    return (this.stmts.pendingGaps.all() as { payload: string }[]).map(
      (r) => JSON.parse(r.payload) as GapRecord,
    );
  }

  ackGap(gapId: string): void {
    this.stmts.removeGap.run(gapId);
  }

  /** The publisher is about to send this record: from now on it is never extended. */
  sealGap(gapId: string): void {
    this.stmts.sealGap.run(gapId);
  }

  /**
   * Re-anchors readings of the current boot whose wall time was not trusted: their
   * `observedAt` becomes `monoMs + offsetMs` (the offset of a trusted wall clock to the
   * monotonic clock) and their time quality `reanchored`. Only readings with
   * `afterMono < monoMs <= untilMono` and one of the given qualities. Returns how many.
   */
  reanchor(opts: {
    offsetMs: number;
    qualities: readonly TimeQuality[];
    afterMono?: number;
    untilMono?: number;
  }): number {
    const changes = this.stmts.reanchor.run(
      opts.offsetMs,
      this.bootSeq,
      opts.afterMono ?? Number.NEGATIVE_INFINITY,
      opts.untilMono ?? Number.POSITIVE_INFINITY,
      JSON.stringify(opts.qualities),
    ).changes;
    return Number(changes);
  }

  /** Readings waiting whose time is `unsynchronised` or `stepped`. */
  untrustedPending(): number {
    return Number((this.stmts.untrusted.get() as { n: number }).n);
  }

  /** Readings waiting for a PUBACK (kept in memory: no query). */
  get depth(): number {
    return this.depthCount;
  }

  get nextSeq(): number {
    return this.meta("nextSeq");
  }

  stats(): OutboxStats {
    const oldest = this.stmts.oldest.get() as { observed_at: number } | undefined;
    return {
      depth: this.depthCount,
      oldestObservedAt: oldest ? Number(oldest.observed_at) : null,
      evictedTotal: this.meta("evictedTotal"),
      gapDepth: Number((this.stmts.gapCount.get() as { n: number }).n),
      nextSeq: this.meta("nextSeq"),
    };
  }

  /** Record a status value (JSON) for `coldtrace-agent status`. */
  writeStatus(values: Record<string, unknown>): void {
    const at = this.now();
    this.transaction(() => {
      for (const [key, value] of Object.entries(values))
        this.stmts.setStatus.run(key, JSON.stringify(value), at);
    });
  }

  /** Orderly close: marks the shutdown clean (fsynced), so the next open continues numbering. */
  close(): void {
    if (!this.db.isOpen) return;
    try {
      this.durably(() => this.stmts.setMeta.run(1, "cleanShutdown"));
    } finally {
      this.db.close();
    }
  }
}

/** One record covering both: seq and time ranges spanned, ids united, counts added. */
function merge(a: GapRow, b: Omit<GapRow, "v" | "agentId" | "gapId" | "reason" | "at">): GapRecord {
  return {
    ...a,
    unitIds: union(a.unitIds, b.unitIds),
    probeIds: union(a.probeIds, b.probeIds),
    fromObservedAt: Math.min(a.fromObservedAt, b.fromObservedAt),
    toObservedAt: Math.max(a.toObservedAt, b.toObservedAt),
    fromSeq: Math.min(a.fromSeq, b.fromSeq),
    toSeq: Math.max(a.toSeq, b.toSeq),
    droppedCount: a.droppedCount + b.droppedCount,
  };
}

export interface OutboxSnapshot extends OutboxStats {
  status: Record<string, { value: unknown; updatedAt: number }>;
}

/**
 * Read an outbox from another process (the `status` command) without writing to it. WAL lets
 * this reader in while the agent is running.
 */
export function readOutboxSnapshot(path: string): OutboxSnapshot {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly: true });
  } catch (err) {
    throw new ColdtraceError(
      "CT_OUTBOX_IO",
      `cannot open outbox ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    );
  }
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    const meta = Object.fromEntries(
      (db.prepare("SELECT key, value FROM meta").all() as { key: string; value: number }[]).map((r) => [
        r.key,
        Number(r.value),
      ]),
    );
    const depth = Number((db.prepare("SELECT count(*) AS n FROM readings").get() as { n: number }).n);
    const oldest = db.prepare("SELECT observed_at FROM readings ORDER BY seq LIMIT 1").get() as
      | { observed_at: number }
      | undefined;
    const gapDepth = Number((db.prepare("SELECT count(*) AS n FROM gaps").get() as { n: number }).n);
    const status: OutboxSnapshot["status"] = {};
    for (const r of db.prepare("SELECT key, value, updated_at FROM status").all() as {
      key: string;
      value: string;
      updated_at: number;
    }[]) {
      status[r.key] = { value: JSON.parse(r.value) as unknown, updatedAt: Number(r.updated_at) };
    }
    return {
      depth,
      oldestObservedAt: oldest ? Number(oldest.observed_at) : null,
      evictedTotal: meta.evictedTotal ?? 0,
      gapDepth,
      nextSeq: meta.nextSeq ?? 1,
      status,
    };
  } catch (err) {
    throw new ColdtraceError(
      "CT_OUTBOX_IO",
      `cannot read outbox ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    );
  } finally {
    db.close();
  }
}
