/** The lots suite on the PostgreSQL record backend (a fresh schema per run). */
import { freshPgSchema, requireService } from "@coldtrace/testkit";
import pg from "pg";
import { describe } from "vitest";
import { lotsSuite } from "./lots.suite.ts";

const service = await requireService("postgres");
describe.skipIf(!service.available)(`PostgreSQL ${service.reason}`, () => {
  lotsSuite("postgres", async () => {
    const schema = await freshPgSchema("ct_lots");
    const pool = new pg.Pool({ connectionString: schema.connectionString, max: 4 });
    return {
      db: { kind: "postgres", pool },
      close: async () => {
        await pool.end();
        await schema.drop();
      },
    };
  });
});
