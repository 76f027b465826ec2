import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSqlite } from "../../../src/storage/index.ts";
import { startWalCheckpointer } from "../../../src/storage/sql/checkpointer.ts";

const log = pino({ level: "silent" });
const PAGE_ROW = "x".repeat(4000);

describe("WAL checkpointer (real SQLite file, worker thread)", () => {
  let dir: string;
  let file: string;
  let db: DatabaseSync;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-ckpt-"));
    file = path.join(dir, "ct.db");
    db = openSqlite(file);
    db.exec("CREATE TABLE r (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  });
  afterEach(async () => {
    if (db.isOpen) db.close();
    await rm(dir, { recursive: true, force: true });
  });

  const autoCheckpoint = () =>
    (db.prepare("PRAGMA wal_autocheckpoint").get() as { wal_autocheckpoint: number }).wal_autocheckpoint;
  const walBytes = () => statSync(`${file}-wal`).size;

  /**
   * ~`mb` MB in commits of 100 pages (400 KB), `gapMs` apart. Returns the WAL file's high-water
   * mark (SQLite reuses the file from its start, it does not shrink it).
   */
  async function write(mb: number, gapMs = 4, from = 0): Promise<number> {
    const insert = db.prepare("INSERT INTO r (id, body) VALUES (?, ?)");
    let id = from;
    let maxWal = 0;
    for (let c = 0; c < mb * 2.5; c++) {
      db.exec("BEGIN IMMEDIATE");
      for (let i = 0; i < 100; i++) insert.run(id++, PAGE_ROW);
      db.exec("COMMIT");
      maxWal = Math.max(maxWal, walBytes());
      await sleep(gapMs);
    }
    return maxWal;
  }

  it("takes checkpoints off the writer and keeps the WAL short", async () => {
    expect(autoCheckpoint()).toBe(1000);
    const ckpt = startWalCheckpointer(file, { intervalMs: 10, log, writer: db });
    try {
      await ckpt.ready;
      expect(autoCheckpoint()).toBe(0);
      // 40 MB at ~20 MB/s, ten times what 180,000 readings/s write. The writer never checkpoints
      // now: without the worker the WAL would hold all 40 MB (next test). With it, it peaks under
      // 1 MB here, even with four busy loops beside it; half is a loose bound that still tells
      // bounded from unbounded.
      const maxWal = await write(40, 20);
      expect(maxWal).toBeLessThan(20 * 10 ** 6);
    } finally {
      await ckpt.stop();
    }
    expect(autoCheckpoint()).toBe(1000);
    const n = db.prepare("SELECT COUNT(*) AS n FROM r").get() as { n: number };
    expect(n.n).toBe(10_000);
    expect(db.prepare("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
  });

  it("without the worker the WAL grows: what the first test guards against", async () => {
    db.exec("PRAGMA wal_autocheckpoint = 0");
    const maxWal = await write(20);
    expect(maxWal).toBeGreaterThan(20 * 10 ** 6);
  });

  it("gives the writer its auto-checkpoint back when the worker fails", async () => {
    db.exec("PRAGMA wal_autocheckpoint = 500");
    const warnings: string[] = [];
    const spy = pino(
      { level: "warn" },
      {
        write: (line: string) => {
          warnings.push(JSON.parse(line).msg);
        },
      },
    );
    // The worker cannot open a database in a folder that does not exist, and dies.
    const ckpt = startWalCheckpointer(path.join(dir, "missing", "ct.db"), {
      intervalMs: 10,
      log: spy,
      writer: db,
    });
    expect(autoCheckpoint()).toBe(0);
    await expect(ckpt.ready).rejects.toThrow();
    for (let i = 0; i < 200 && autoCheckpoint() === 0; i++) await sleep(20);
    expect(autoCheckpoint()).toBe(500);
    expect(warnings).toContain("wal checkpointer stopped; ingest checkpoints the WAL itself from now on");
  });
});
