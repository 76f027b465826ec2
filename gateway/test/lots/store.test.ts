/** The LotStore contract on SQLite (in memory) and PostgreSQL (a fresh schema). */
import { freshPgSchema, requireService } from "@coldtrace/testkit";
import pg from "pg";
import { describe } from "vitest";
import { openSqlite } from "../../src/storage/sqlite.ts";
import { lotStoreContract } from "./store.contract.ts";

lotStoreContract("sqlite", async () => {
  const db = openSqlite(":memory:");
  return { db: { kind: "sqlite", db }, close: async () => db.close() };
});

const service = await requireService("postgres");
describe.skipIf(!service.available)(`PostgreSQL ${service.reason}`, () => {
  lotStoreContract("postgres", async () => {
    const schema = await freshPgSchema("ct_lotstore");
    const pool = new pg.Pool({ connectionString: schema.connectionString, max: 2 });
    return {
      db: { kind: "postgres", pool },
      close: async () => {
        await pool.end();
        await schema.drop();
      },
    };
  });
});
