/**
 * A gateway process in miniature for the kill -9 test: opens the SQLite record database, starts
 * the outbox dispatcher against a broker and runs until killed. argv: db brokerUrl delayMs, where
 * db is a SQLite file path or a postgres:// connection string.
 * With delayMs > 0 every publish is held back a little, so the parent can kill mid-dispatch.
 */
import mqtt from "mqtt";
import pg from "pg";
import pino from "pino";
import { createEventOutbox } from "../../src/outbox/index.ts";
import { openSqlite } from "../../src/storage/sqlite.ts";

const [dbPath, url, delay] = process.argv.slice(2);
const delayMs = Number(delay ?? 0);
const outbox = createEventOutbox(
  dbPath!.startsWith("postgres")
    ? { kind: "postgres", pool: new pg.Pool({ connectionString: dbPath!, max: 2 }) }
    : { kind: "sqlite", db: openSqlite(dbPath!) },
);
await outbox.init();
const client = mqtt.connect(url!, { clientId: `ct-outbox-child-${process.pid}`, reconnectPeriod: 100 });
if (delayMs > 0) {
  const publish = client.publish.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { publish: (...args: unknown[]) => unknown }).publish = (...args: unknown[]) => {
    setTimeout(() => publish(...args), delayMs);
    return client;
  };
}
outbox.startDispatcher(client, pino({ level: "silent" }), { batchSize: 5, pollMs: 50 });
console.log("ready");
