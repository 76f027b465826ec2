/** The per-module migration runner on real SQLite and PostgreSQL. */
import { freshPgSchema, type PgSchema, requireService } from "@coldtrace/testkit";
import type pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createPgPool } from "../../../src/storage/postgres.ts";
import { migratePostgres, migrateSqlite } from "../../../src/storage/sql/migrate.ts";
import { openSqlite } from "../../../src/storage/sqlite.ts";

const v1 = "CREATE TABLE lots (lot_id TEXT PRIMARY KEY)";
const v2 = "ALTER TABLE lots ADD COLUMN sku TEXT";
const v3 = "CREATE INDEX lots_sku ON lots (sku)";

describe("migrateSqlite", () => {
  const applied = (db: ReturnType<typeof openSqlite>, module: string) =>
    db
      .prepare("SELECT version FROM schema_migrations WHERE module = ? ORDER BY version")
      .all(module)
      .map((r) => r.version);

  it("applies migrations in order, once, and only the new ones on a later run", () => {
    const db = openSqlite(":memory:");
    migrateSqlite(db, "lots", [v1, v2]);
    expect(applied(db, "lots")).toEqual([1, 2]);
    migrateSqlite(db, "lots", [v1, v2]);
    migrateSqlite(db, "lots", [v1, v2, v3]);
    expect(applied(db, "lots")).toEqual([1, 2, 3]);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'lots_sku'").get()).toBeDefined();
    db.close();
  });

  it("keeps modules apart", () => {
    const db = openSqlite(":memory:");
    migrateSqlite(db, "lots", [v1]);
    migrateSqlite(db, "audit", [
      "CREATE TABLE audit (id INTEGER PRIMARY KEY)",
      "ALTER TABLE audit ADD COLUMN at INTEGER",
    ]);
    expect(applied(db, "lots")).toEqual([1]);
    expect(applied(db, "audit")).toEqual([1, 2]);
    db.close();
  });

  it("rolls back a failing migration and reports CT_STORE_IO with module and version", () => {
    const db = openSqlite(":memory:");
    migrateSqlite(db, "lots", [v1]);
    const broken = "ALTER TABLE lots ADD COLUMN qty INTEGER; ALTER TABLE nope ADD COLUMN x";
    expect(() => migrateSqlite(db, "lots", [v1, broken])).toThrowError(
      expect.objectContaining({
        code: "CT_STORE_IO",
        context: expect.objectContaining({ module: "lots", version: 2 }),
      }),
    );
    expect(applied(db, "lots")).toEqual([1]);
    // The first statement of the failed script was rolled back too.
    expect(db.prepare("SELECT * FROM pragma_table_info('lots') WHERE name = 'qty'").all()).toEqual([]);
    db.close();
  });

  it("refuses a database whose schema is newer than the gateway", () => {
    const db = openSqlite(":memory:");
    migrateSqlite(db, "lots", [v1, v2]);
    expect(() => migrateSqlite(db, "lots", [v1])).toThrowError(
      expect.objectContaining({
        code: "CT_STORE_IO",
        context: expect.objectContaining({ applied: 2, known: 1 }),
      }),
    );
    db.close();
  });
});

const postgres = await requireService("postgres");
describe.skipIf(!postgres.available)(`migratePostgres ${postgres.reason}`, () => {
  const schemas: PgSchema[] = [];
  const pools: pg.Pool[] = [];
  async function pool(): Promise<pg.Pool> {
    const s = await freshPgSchema("ct_migr");
    schemas.push(s);
    const p = createPgPool(s.connectionString);
    pools.push(p);
    return p;
  }
  afterAll(async () => {
    for (const p of pools) await p.end();
    for (const s of schemas) await s.drop();
  });
  const applied = async (p: pg.Pool, module: string) =>
    (
      await p.query("SELECT version FROM schema_migrations WHERE module = $1 ORDER BY version", [module])
    ).rows.map((r) => r.version);

  it("applies migrations in order, once, per module", async () => {
    const p = await pool();
    await migratePostgres(p, "lots", [v1, v2]);
    await migratePostgres(p, "lots", [v1, v2, v3]);
    await migratePostgres(p, "audit", ["CREATE TABLE audit (id INT)"]);
    expect(await applied(p, "lots")).toEqual([1, 2, 3]);
    expect(await applied(p, "audit")).toEqual([1]);
  });

  it("applies once when several instances start at the same time", async () => {
    const p = await pool();
    const other = createPgPool(schemas.at(-1)?.connectionString as string);
    pools.push(other);
    // Without the advisory lock, the second CREATE TABLE would fail or v1 would be recorded twice.
    await Promise.all([
      migratePostgres(p, "lots", [v1, v2]),
      migratePostgres(other, "lots", [v1, v2]),
      migratePostgres(p, "lots", [v1, v2]),
    ]);
    expect(await applied(p, "lots")).toEqual([1, 2]);
  });

  it("rolls back a failing migration and reports CT_STORE_IO; newer schemas are refused", async () => {
    const p = await pool();
    await migratePostgres(p, "lots", [v1]);
    await expect(
      migratePostgres(p, "lots", [
        v1,
        "ALTER TABLE lots ADD COLUMN qty INT; ALTER TABLE nope ADD COLUMN x INT",
      ]),
    ).rejects.toMatchObject({
      code: "CT_STORE_IO",
      context: expect.objectContaining({ module: "lots", version: 2 }),
    });
    expect(await applied(p, "lots")).toEqual([1]);
    const cols = await p.query(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'lots' AND table_schema = current_schema()",
    );
    expect(cols.rows.map((r) => r.column_name)).toEqual(["lot_id"]);
    await migratePostgres(p, "lots", [v1, v2]);
    await expect(migratePostgres(p, "lots", [v1])).rejects.toMatchObject({
      code: "CT_STORE_IO",
      context: expect.objectContaining({ applied: 2, known: 1 }),
    });
  });
});
