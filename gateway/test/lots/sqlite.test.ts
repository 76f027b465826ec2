/** The lots suite on the SQLite record backend (in-memory database). */
import { openSqlite } from "../../src/storage/sqlite.ts";
import { lotsSuite } from "./lots.suite.ts";

lotsSuite("sqlite", async () => {
  const db = openSqlite(":memory:");
  return { db: { kind: "sqlite", db }, close: async () => db.close() };
});
