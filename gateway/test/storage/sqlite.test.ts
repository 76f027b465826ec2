/** The SQLite backend against both contracts, on a real temp file, plus SQLite specifics. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { afterAll, describe, expect, it } from "vitest";
import { createSqliteReadingStore, createSqliteRecordStore, openSqlite } from "../../src/storage/sqlite.ts";
import { fixture, readingStoreContract, T0 } from "./reading-store.contract.ts";
import { recordStoreContract } from "./record-store.contract.ts";

const dir = mkdtempSync(path.join(tmpdir(), "ct-sqlite-store-"));
const dbs: DatabaseSync[] = [];
function open(name: string): DatabaseSync {
  const db = openSqlite(path.join(dir, name));
  dbs.push(db);
  return db;
}
afterAll(() => {
  for (const db of dbs) if (db.isOpen) db.close();
  rmSync(dir, { recursive: true, force: true });
});

readingStoreContract("sqlite", () => createSqliteReadingStore(open("readings.db")));
recordStoreContract("sqlite", () => createSqliteRecordStore(open("records.db")));

describe("SQLite specifics", () => {
  it("opens the file in WAL mode with synchronous=NORMAL", () => {
    const db = open("pragmas.db");
    expect(db.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    expect(db.prepare("PRAGMA synchronous").get()).toEqual({ synchronous: 1 });
  });

  it("accepts :memory: and shares one handle between readings and records", async () => {
    const db = openSqlite(":memory:");
    const readings = await createSqliteReadingStore(db);
    const records = await createSqliteRecordStore(db);
    const f = fixture();
    await readings.append([f.reading(1)]);
    await records.upsertUnit({ unitId: f.unitId, siteId: f.siteId, kind: "fridge" });
    expect(await readings.latest(f.unitId)).toHaveLength(1);
    db.close();
  });

  it("keeps readings across a reopen of the file", async () => {
    const file = path.join(dir, "reopen.db");
    const db1 = openSqlite(file);
    const f = fixture();
    await (await createSqliteReadingStore(db1)).append([f.reading(1), f.reading(2)]);
    db1.close();
    const db2 = open("reopen.db");
    const store = await createSqliteReadingStore(db2);
    expect((await store.append([f.reading(2), f.reading(3)])).duplicates).toBe(1);
    expect(await store.range({ unitId: f.unitId, from: T0, to: T0 + 10_000 })).toHaveLength(3);
  });

  it("reports a bad row as CT_STORE_IO instead of returning it", async () => {
    const db = open("bad.db");
    const store = await createSqliteReadingStore(db);
    const f = fixture();
    await store.append([f.reading(1)]);
    db.prepare("UPDATE readings SET quality = 'melted' WHERE agent_id = ?").run(f.agentId);
    await expect(store.range({ unitId: f.unitId, from: T0, to: T0 + 10_000 })).rejects.toMatchObject({
      code: "CT_STORE_IO",
      context: expect.objectContaining({ backend: "sqlite", field: "quality" }),
    });
    const records = await createSqliteRecordStore(db);
    db.prepare("INSERT INTO units (unit_id, site_id, data) VALUES ('u-bad', 's', '{not json')").run();
    await expect(records.getUnit("u-bad")).rejects.toMatchObject({ code: "CT_STORE_IO" });
  });

  it("reports a failing write as CT_STORE_IO and stores nothing of the batch", async () => {
    const db = open("readonly.db");
    const store = await createSqliteReadingStore(db);
    const f = fixture();
    db.exec(
      "CREATE TRIGGER no_p9 BEFORE INSERT ON readings WHEN NEW.probe_id = 'p9' BEGIN SELECT RAISE(ABORT, 'p9 refused'); END",
    );
    await expect(store.append([f.reading(1), f.reading(2, { probeId: "p9" })])).rejects.toMatchObject({
      code: "CT_STORE_IO",
      context: expect.objectContaining({ backend: "sqlite", op: "append readings" }),
    });
    expect(await store.range({ unitId: f.unitId, from: T0, to: T0 + 10_000 })).toEqual([]);
    expect(await store.latest(f.unitId)).toEqual([]);
  });
});
