/**
 * Schema migrations per module, for SQLite and PostgreSQL. Each module (storage, lots, …)
 * passes its own ordered list of SQL scripts; script i is version i + 1. The table
 * `schema_migrations(module, version, applied_at)` records what ran. Scripts are never edited
 * once released: add a new one instead.
 *
 *   migrate(db, "lots", [v1, v2, v3])
 *     applied: lots@1          -> runs v2, v3, each in its own transaction
 *     applied: lots@1..3       -> nothing to do
 *     applied: lots@1..4       -> CT_STORE_IO: the database is newer than this gateway
 *
 * PostgreSQL: several gateway instances may start at once, so the runner holds a session
 * advisory lock while it checks and applies (PostgreSQL docs §13.3.5 Advisory Locks).
 */
import type { DatabaseSync } from "node:sqlite";
import { ColdtraceError } from "@coldtrace/protocol";
import type pg from "pg";
import { storeError } from "./errors.ts";

/** Key of the advisory lock serialising migrations across gateway instances ("ctmigr" in ASCII). */
export const MIGRATION_LOCK_KEY = 0x63746d69677200n;

function tooNew(backend: string, module: string, applied: number, known: number): ColdtraceError {
  return new ColdtraceError(
    "CT_STORE_IO",
    `${backend}: schema of module "${module}" is at version ${applied}, newer than this gateway knows (${known}); upgrade the gateway or restore a matching backup`,
    { backend, module, applied, known },
  );
}

export function migrateSqlite(db: DatabaseSync, module: string, migrations: readonly string[]): void {
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      module TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL,
      PRIMARY KEY (module, version))`);
  } catch (err) {
    throw storeError("sqlite", "create schema_migrations", err, { module });
  }
  // BEGIN IMMEDIATE takes the write lock first, so two processes on one file cannot both apply v(n).
  for (let i = 0; i < migrations.length; i++) {
    const version = i + 1;
    try {
      db.exec("BEGIN IMMEDIATE");
    } catch (err) {
      throw storeError("sqlite", "begin migration", err, { module, version });
    }
    try {
      const row = db
        .prepare("SELECT max(version) AS v FROM schema_migrations WHERE module = ?")
        .get(module) as { v: number | null } | undefined;
      const applied = Number(row?.v ?? 0);
      if (applied > migrations.length) throw tooNew("sqlite", module, applied, migrations.length);
      if (applied >= version) {
        db.exec("COMMIT");
        continue;
      }
      db.exec(migrations[i] as string);
      db.prepare("INSERT INTO schema_migrations (module, version, applied_at) VALUES (?, ?, ?)").run(
        module,
        version,
        Date.now(),
      );
      db.exec("COMMIT");
    } catch (err) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw storeError("sqlite", `migration ${module}@${version}`, err, { module, version });
    }
  }
  if (migrations.length === 0) {
    const row = db.prepare("SELECT max(version) AS v FROM schema_migrations WHERE module = ?").get(module) as
      | { v: number | null }
      | undefined;
    const applied = Number(row?.v ?? 0);
    if (applied > 0) throw tooNew("sqlite", module, applied, 0);
  }
}

export async function migratePostgres(
  pool: pg.Pool,
  module: string,
  migrations: readonly string[],
): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw storeError("postgres", "connect", err, { module });
  }
  let locked = false;
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY.toString()]);
    locked = true;
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      module TEXT NOT NULL, version INTEGER NOT NULL, applied_at BIGINT NOT NULL,
      PRIMARY KEY (module, version))`);
    const { rows } = await client.query(
      "SELECT coalesce(max(version), 0) AS v FROM schema_migrations WHERE module = $1",
      [module],
    );
    const applied = Number(rows[0]?.v ?? 0);
    if (applied > migrations.length) throw tooNew("postgres", module, applied, migrations.length);
    for (let i = applied; i < migrations.length; i++) {
      const version = i + 1;
      try {
        await client.query("BEGIN");
        await client.query(migrations[i] as string);
        await client.query(
          "INSERT INTO schema_migrations (module, version, applied_at) VALUES ($1, $2, $3)",
          [module, version, Date.now()],
        );
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw storeError("postgres", `migration ${module}@${version}`, err, { module, version });
      }
    }
  } catch (err) {
    throw storeError("postgres", `migrate ${module}`, err, { module });
  } finally {
    if (locked)
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY.toString()]).catch(() => {});
    client.release();
  }
}
