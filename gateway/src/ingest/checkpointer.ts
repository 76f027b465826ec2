/**
 * WAL checkpoints off the ingest thread. SQLite in WAL mode with synchronous=NORMAL never
 * fsyncs on COMMIT, only when it checkpoints (sqlite.org/wal.html#ckpt, pragma.html#pragma_synchronous),
 * and by default the connection whose COMMIT pushes the WAL past 1000 pages runs that
 * checkpoint itself: on this machine a 10–15 ms stall of the event loop every few dozen
 * commits, which was the p99 of event latency (gateway/bench/ingest.bench.ts).
 *
 *   ingest thread: BEGIN … COMMIT (append to the WAL, no fsync)
 *   worker thread: every intervalMs PRAGMA wal_checkpoint(PASSIVE) on its own connection
 *                  (copies WAL pages to the database, fsyncs; never blocks writers or readers)
 *
 * A complete checkpoint lets the next writer restart the WAL from the beginning, so with a
 * short enough interval the writer's own auto-checkpoint threshold is never reached. If it
 * is (very high ingest rates), SQLite still checkpoints on the writer as before.
 */
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type { Logger } from "pino";

interface CheckpointerData {
  coldtraceCheckpointer: true;
  path: string;
  intervalMs: number;
}

export interface WalCheckpointer {
  stop(): Promise<void>;
}

/** Start a worker thread that checkpoints the SQLite database at `path` every `intervalMs`. */
export function startWalCheckpointer(
  path: string,
  opts: { intervalMs: number; log: Logger },
): WalCheckpointer {
  const log = opts.log.child({ component: "wal-checkpointer" });
  const data: CheckpointerData = { coldtraceCheckpointer: true, path, intervalMs: opts.intervalMs };
  const worker = new Worker(new URL(import.meta.url), { workerData: data });
  worker.unref();
  worker.on("error", (err) => log.warn({ err, path }, "wal checkpointer failed"));
  worker.on("message", (m: { error?: string }) => {
    if (m.error) log.warn({ path, error: m.error }, "wal checkpoint failed");
  });
  return {
    async stop() {
      await worker.terminate();
    },
  };
}

function runWorker(d: CheckpointerData): void {
  // Loaded only in the worker: node:sqlite is synchronous, this thread may block on fsync.
  void import("node:sqlite").then(({ DatabaseSync }) => {
    const db = new DatabaseSync(d.path, { timeout: 0 });
    const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
    setInterval(() => {
      try {
        checkpoint.get();
      } catch (err) {
        parentPort?.postMessage({ error: (err as Error).message });
      }
    }, d.intervalMs);
  });
}

if (!isMainThread && (workerData as Partial<CheckpointerData> | undefined)?.coldtraceCheckpointer) {
  runWorker(workerData as CheckpointerData);
}
