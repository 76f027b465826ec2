/**
 * The gateway's one SQL seam over the two records backends: the record store, the event
 * outbox and the modules (lots, qa …) run the same statements on SQLite (node:sqlite
 * `DatabaseSync`) and PostgreSQL (`pg.Pool`) through it. Statements are written with `?`
 * placeholders; for PostgreSQL they become `$1, $2 …`. BIGINT columns (epoch milliseconds)
 * come back as numbers on both. Failures are `CT_STORE_IO` (errors.ts).
 *
 *   caller ─▶ transaction(fn) ─▶ SQLite: the database's one lock (lock.ts), BEGIN IMMEDIATE … COMMIT
 *                              └▶ PostgreSQL: one pooled client, BEGIN … COMMIT
 *
 * A transaction hands `fn` an executor bound to it: everything written through that executor
 * (the state change and its outbox row) commits or rolls back together. `fn` must write only
 * through that executor and must not open another transaction on the same database (on
 * SQLite that would wait for its own lock forever).
 *
 * Per database there is one lock and one prepared-statement cache, however many times
 * `sqlDatabase` wraps it.
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import pg from "pg";
import { storeError } from "./errors.ts";
import { databaseLock } from "./lock.ts";
import { migratePostgres, migrateSqlite } from "./migrate.ts";

/** A records database as storage opened it. */
export type RecordDb = { kind: "sqlite"; db: DatabaseSync } | { kind: "postgres"; pool: pg.Pool };

export type SqlValue = string | number | null;
export type SqlRow = Record<string, unknown>;

/** Runs statements, either on the database directly or inside one transaction. */
export interface SqlExecutor {
  readonly kind: "sqlite" | "postgres";
  all<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

export interface SqlDatabase extends SqlExecutor {
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Bring `module`'s schema up to date: script i is version i + 1 (migrate.ts). */
  migrate(module: string, scripts: readonly string[]): Promise<void>;
}

const sqliteStatements = new WeakMap<DatabaseSync, Map<string, StatementSync>>();

function failed(kind: SqlExecutor["kind"], err: unknown, sql: string) {
  return storeError(kind, "statement", err, { sql: sql.slice(0, 200) });
}

function sqliteExecutor(db: DatabaseSync): SqlExecutor {
  let cache = sqliteStatements.get(db);
  if (!cache) {
    cache = new Map();
    sqliteStatements.set(db, cache);
  }
  const statements = cache;
  const prepare = (sql: string): StatementSync => {
    let st = statements.get(sql);
    if (!st) {
      st = db.prepare(sql);
      statements.set(sql, st);
    }
    return st;
  };
  return {
    kind: "sqlite",
    async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
      try {
        return prepare(sql).all(...(params as SQLInputValue[])) as T[];
      } catch (err) {
        throw failed("sqlite", err, sql);
      }
    },
    async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
      try {
        return Number(prepare(sql).run(...(params as SQLInputValue[])).changes);
      } catch (err) {
        throw failed("sqlite", err, sql);
      }
    },
  };
}

const pgSqlCache = new Map<string, string>();
function toPgSql(sql: string): string {
  let out = pgSqlCache.get(sql);
  if (out === undefined) {
    let n = 0;
    out = sql.replace(/\?/g, () => `$${++n}`);
    pgSqlCache.set(sql, out);
  }
  return out;
}

// BIGINT (oid 20) holds epoch milliseconds, well inside Number's safe range.
const pgTypes = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

function pgExecutor(q: pg.Pool | pg.PoolClient): SqlExecutor {
  const query = async (sql: string, params: readonly SqlValue[]) => {
    try {
      return await q.query({ text: toPgSql(sql), values: params as unknown[], types: pgTypes });
    } catch (err) {
      throw failed("postgres", err, sql);
    }
  };
  return {
    kind: "postgres",
    async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
      return (await query(sql, params)).rows as T[];
    },
    async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
      return (await query(sql, params)).rowCount ?? 0;
    },
  };
}

/**
 * One PostgreSQL transaction on a pooled client: BEGIN, `fn`, COMMIT, and ROLLBACK when
 * anything fails. Failures to connect, begin or commit are CT_STORE_IO; `fn`'s own errors pass
 * through as thrown. The client is always released.
 */
export async function pgTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw storeError("postgres", "connect", err);
  }
  const control = async (statement: "BEGIN" | "COMMIT") => {
    try {
      await client.query(statement);
    } catch (err) {
      throw storeError("postgres", statement.toLowerCase(), err);
    }
  };
  try {
    await control("BEGIN");
    const out = await fn(client);
    await control("COMMIT");
    return out;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Wrap a records database. Safe to call several times on the same database (shared lock and cache). */
export function sqlDatabase(rdb: RecordDb): SqlDatabase {
  if (rdb.kind === "sqlite") {
    const db = rdb.db;
    const lock = databaseLock(db);
    const ex = sqliteExecutor(db);
    return {
      kind: "sqlite",
      all: ex.all,
      // A write outside a transaction still waits for the lock, or it would join (and maybe
      // roll back with) somebody else's open transaction on the one connection.
      run: (sql, params) => lock.lock(() => ex.run(sql, params)),
      transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
        return lock.lock(async () => {
          db.exec("BEGIN IMMEDIATE");
          try {
            const out = await fn(ex);
            db.exec("COMMIT");
            return out;
          } catch (err) {
            if (db.isTransaction) db.exec("ROLLBACK");
            throw err;
          }
        });
      },
      async migrate(module, scripts): Promise<void> {
        await lock.lock(async () => migrateSqlite(db, module, scripts));
      },
    };
  }
  const pool = rdb.pool;
  const ex = pgExecutor(pool);
  return {
    kind: "postgres",
    all: ex.all,
    run: ex.run,
    transaction: (fn) => pgTransaction(pool, (client) => fn(pgExecutor(client))),
    migrate: (module, scripts) => migratePostgres(pool, module, scripts),
  };
}

/** True for the database itself (autocommit), false for the executor of an open transaction. */
export function isDatabase(ex: SqlExecutor): ex is SqlDatabase {
  return "transaction" in ex;
}

/**
 * Serialise one module's writers on a database, inside a transaction: PostgreSQL takes a
 * transaction-scoped advisory lock named after the database, schema and module (released at
 * COMMIT or ROLLBACK, so
 * across pooled clients and gateway processes, PostgreSQL docs §13.3.5); on SQLite the
 * transaction already holds the database's one lock (lock.ts). Call it first in the transaction.
 */
export async function lockModule(tx: SqlExecutor, module: string): Promise<void> {
  if (tx.kind !== "postgres") return;
  // Keyed by database, schema and module: gateways on other schemas of one server never wait.
  await tx.all(
    "SELECT pg_advisory_xact_lock(hashtext(current_database() || '.' || current_schema() || '.' || ?)) AS locked",
    [`coldtrace:${module}`],
  );
}

/**
 * Run `fn` inside a SAVEPOINT of the caller's open transaction: when it throws, its writes roll
 * back alone and the transaction can go on (SQLite and PostgreSQL: SAVEPOINT / ROLLBACK TO /
 * RELEASE). `name` must be a plain identifier.
 */
export async function withSavepoint<T>(tx: SqlExecutor, name: string, fn: () => Promise<T>): Promise<T> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name))
    throw new Error(`savepoint name ${JSON.stringify(name)} is not an identifier`);
  await tx.run(`SAVEPOINT ${name}`);
  try {
    const out = await fn();
    await tx.run(`RELEASE SAVEPOINT ${name}`);
    return out;
  } catch (err) {
    await tx.run(`ROLLBACK TO SAVEPOINT ${name}`);
    await tx.run(`RELEASE SAVEPOINT ${name}`);
    throw err;
  }
}
