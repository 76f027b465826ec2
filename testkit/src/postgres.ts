/** A fresh PostgreSQL schema per test suite, dropped afterwards, so suites never see each other's rows. */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { postgresUrl } from "./services.ts";

export interface PgSchema {
  url: string;
  schema: string;
  /** Connection string whose search_path is the fresh schema. */
  connectionString: string;
  drop(): Promise<void>;
}

export async function freshPgSchema(prefix = "ct_test"): Promise<PgSchema> {
  const url = postgresUrl();
  const schema = `${prefix}_${randomBytes(5).toString("hex")}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  const u = new URL(url);
  u.searchParams.set("options", `-c search_path=${schema}`);
  return {
    url,
    schema,
    connectionString: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}
