/**
 * WAL checkpoints off the ingest thread. SQLite in WAL mode with synchronous=NORMAL never
 * fsyncs on COMMIT, only when it checkpoints (sqlite.org/wal.html#ckpt, pragma.html#pragma_synchronous).
 * By default the connection whose COMMIT pushes the WAL past 1000 pages runs that checkpoint
 * itself, inside the COMMIT, on the event loop that also runs the broker and the engine. At
 * 5,000 readings/s that was a 5–8 ms stall of one commit in twenty: the p99 of event latency
 * (gateway/bench/ingest.bench.ts, docs/benchmarks.md).
 *
 *   ingest thread: wal_autocheckpoint = 0; BEGIN … COMMIT only appends to the WAL (no fsync)
 *   worker thread: every intervalMs PRAGMA wal_checkpoint(PASSIVE) on its own connection
 *                  (copies WAL pages into the database and fsyncs; never blocks writers or readers)
 *
 * Once a checkpoint has copied the whole WAL, the writer's next transaction starts the WAL over
 * from its beginning, so the WAL file stays the size of one interval's writes. A checkpoint
 * with nothing new to copy does no I/O, so a short interval costs nothing when idle.
 *
 * Should the worker stop (it failed, or `stop()`), the writer gets its own auto-checkpoint back,
 * so the WAL can never grow without bound. A WAL that stays long (a reader holding an old
 * snapshot keeps PASSIVE from finishing) is logged.
 */
import type { DatabaseSync } from "node:sqlite";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type { Logger } from "pino";

interface CheckpointerData {
  coldtraceCheckpointer: true;
  path: string;
  intervalMs: number;
  longWalPages: number;
}

/** What the worker reports: a failed checkpoint, or a WAL still longer than `longWalPages`. */
type WorkerMessage = { ready: true } | { error: string } | { longWal: { pages: number; copied: number } };

export interface WalCheckpointerOptions {
  intervalMs: number;
  log: Logger;
  /**
   * The connection ingest writes through. Its auto-checkpoint is switched off while the worker
   * runs and restored when the worker stops. Without it, the worker only helps: the writer
   * still checkpoints itself once the WAL passes 1000 pages between two intervals.
   */
  writer?: DatabaseSync;
  /** Warn when the WAL is still this many pages long after a checkpoint. Default 25,000 (~100 MB). */
  longWalPages?: number;
}

export interface WalCheckpointer {
  /** Resolves once the worker has its connection open and checkpoints (rejects if it failed). */
  ready: Promise<void>;
  /** Stop the worker and give the writer its auto-checkpoint back. */
  stop(): Promise<void>;
}

/** SQLite's default wal_autocheckpoint (pages), for a writer that had none to restore. */
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1000;
/** At most one long-WAL warning per this many ms. */
const LONG_WAL_WARN_EVERY_MS = 60_000;

/** Start a worker thread that checkpoints the SQLite database at `path` every `intervalMs`. */
export function startWalCheckpointer(path: string, opts: WalCheckpointerOptions): WalCheckpointer {
  const log = opts.log.child({ component: "wal-checkpointer" });
  const data: CheckpointerData = {
    coldtraceCheckpointer: true,
    path,
    intervalMs: opts.intervalMs,
    longWalPages: opts.longWalPages ?? 25_000,
  };
  const writer = opts.writer;
  const previous = writer ? autoCheckpointOf(writer) : undefined;
  let handedBack = false;
  const handBack = () => {
    if (handedBack || !writer) return;
    handedBack = true;
    if (writer.isOpen)
      writer.exec(`PRAGMA wal_autocheckpoint = ${previous ?? SQLITE_DEFAULT_AUTOCHECKPOINT}`);
  };

  const worker = new Worker(new URL(import.meta.url), { workerData: data });
  worker.unref();
  if (writer) writer.exec("PRAGMA wal_autocheckpoint = 0");
  let stopping = false;
  let lastLongWalWarning = Number.NEGATIVE_INFINITY;
  const ready = Promise.withResolvers<void>();
  ready.promise.catch(() => {}); // a caller need not wait for it; the failure is logged
  worker.on("error", (err) => {
    log.warn({ err, path }, "wal checkpointer failed");
    ready.reject(err);
  });
  worker.on("exit", (code) => {
    ready.reject(new Error(`wal checkpointer exited with code ${code}`));
    handBack();
    if (!stopping) {
      log.warn({ path, code }, "wal checkpointer stopped; ingest checkpoints the WAL itself from now on");
    }
  });
  worker.on("message", (m: WorkerMessage) => {
    if ("ready" in m) {
      ready.resolve();
    } else if ("error" in m) {
      log.warn({ path, error: m.error }, "wal checkpoint failed");
    } else if (Date.now() - lastLongWalWarning >= LONG_WAL_WARN_EVERY_MS) {
      lastLongWalWarning = Date.now();
      log.warn(
        { path, walPages: m.longWal.pages, copiedPages: m.longWal.copied },
        "the WAL is not being fully checkpointed (a long-running reader?); it grows until it is",
      );
    }
  });
  return {
    ready: ready.promise,
    async stop() {
      stopping = true;
      await worker.terminate();
      handBack();
    },
  };
}

function autoCheckpointOf(db: DatabaseSync): number | undefined {
  const row = db.prepare("PRAGMA wal_autocheckpoint").get() as { wal_autocheckpoint?: number } | undefined;
  return typeof row?.wal_autocheckpoint === "number" ? row.wal_autocheckpoint : undefined;
}

function runWorker(d: CheckpointerData): void {
  // Loaded only in the worker: node:sqlite is synchronous, this thread may block on fsync.
  void import("node:sqlite").then(({ DatabaseSync }) => {
    const db = new DatabaseSync(d.path, { timeout: 0 });
    const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
    parentPort?.postMessage({ ready: true } satisfies WorkerMessage);
    setInterval(() => {
      try {
        // busy: always 0 for PASSIVE; log: WAL pages; checkpointed: pages copied to the database.
        const r = checkpoint.get() as { log: number; checkpointed: number };
        if (r.log >= d.longWalPages && r.checkpointed < r.log) {
          parentPort?.postMessage({
            longWal: { pages: r.log, copied: r.checkpointed },
          } satisfies WorkerMessage);
        }
      } catch (err) {
        parentPort?.postMessage({ error: (err as Error).message } satisfies WorkerMessage);
      }
    }, d.intervalMs);
  });
}

if (!isMainThread && (workerData as Partial<CheckpointerData> | undefined)?.coldtraceCheckpointer) {
  runWorker(workerData as CheckpointerData);
}
