/**
 * The event outbox against real brokers: nothing lost and duplicates only with the same eventId,
 * after a broker restart (embedded aedes closed and restarted on the same port) and after
 * kill -9 of the process that owns the dispatcher — on the embedded broker and on Mosquitto, with
 * the outbox in SQLite and in PostgreSQL.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { formatTopic, type LotEvent, topicFilters } from "@coldtrace/protocol";
import { freshPgSchema, mqttUrl, requireService, startEmbeddedBroker } from "@coldtrace/testkit";
import mqtt from "mqtt";
import pg from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEventOutbox, type EventOutbox } from "../../src/outbox/index.ts";
import { type RecordDb, type SqlDatabase, sqlDatabase } from "../../src/storage/sql/database.ts";
import { openSqlite } from "../../src/storage/sqlite.ts";

const T0 = Date.UTC(2026, 10, 25, 8, 0, 0);
const log = pino({ level: "silent" });

function lotEvent(siteId: string, lotId: string, lotSeq: number): LotEvent {
  return {
    v: 1,
    eventId: `lot-${siteId}-${lotId}-${lotSeq}`,
    siteId,
    at: T0 + lotSeq,
    type: "lot.quarantined",
    lotId,
    sku: "REAG-CRP-100",
    quantity: lotSeq,
    reason: "test",
    excursionIds: [],
    lotSeq,
  };
}

/** Enqueue `perLot` events for each lot, one transaction per event (as the lots service does). */
async function enqueue(
  sql: SqlDatabase,
  outbox: EventOutbox,
  siteId: string,
  lots: string[],
  fromSeq: number,
  toSeq: number,
) {
  for (let s = fromSeq; s <= toSeq; s++) {
    for (const lotId of lots) {
      const e = lotEvent(siteId, lotId, s);
      await sql.transaction((tx) =>
        outbox.enqueue(tx, "lot", formatTopic({ kind: "lot", siteId, lotId }), e, e.eventId),
      );
    }
  }
  outbox.notify();
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A planner-like subscriber: records every lot event, in arrival order. */
async function subscriber(url: string, siteId: string) {
  const seen: LotEvent[] = [];
  const client = mqtt.connect(url, { clientId: `ct-sub-${siteId}`, reconnectPeriod: 50, resubscribe: false });
  const filter = topicFilters.events(siteId);
  let subscribed = deferred();
  client.on("connect", () => {
    client.subscribe(filter, { qos: 1 }, () => subscribed.resolve());
  });
  client.on("message", (_t, payload) => seen.push(JSON.parse(payload.toString()) as LotEvent));
  await subscribed.promise;
  return {
    seen,
    client,
    /** Resolves after the next (re)connect's SUBACK. */
    resubscribed() {
      subscribed = deferred();
      return subscribed.promise;
    },
    async waitFor(n: number) {
      while (new Set(seen.map((e) => e.eventId)).size < n) await new Promise((r) => setTimeout(r, 20));
    },
    close: () => client.endAsync(),
  };
}

function checkDelivery(seen: LotEvent[], siteId: string, lots: string[], perLot: number) {
  const want = lots
    .flatMap((l) => Array.from({ length: perLot }, (_, i) => lotEvent(siteId, l, i + 1).eventId))
    .sort();
  const byId = new Map<string, string>();
  for (const e of seen) {
    const json = JSON.stringify(e);
    // A duplicate is only ever the same event again: same id, same content.
    if (byId.has(e.eventId)) expect(json).toBe(byId.get(e.eventId));
    byId.set(e.eventId, json);
  }
  expect([...byId.keys()].sort()).toEqual(want);
  // Per-lot order: the first copy of each event arrives in lotSeq order.
  for (const lotId of lots) {
    const firsts: number[] = [];
    for (const e of seen) if (e.lotId === lotId && !firsts.includes(e.lotSeq)) firsts.push(e.lotSeq);
    expect(firsts).toEqual(Array.from({ length: perLot }, (_, i) => i + 1));
  }
}

describe("outbox: broker restart (embedded aedes, same port)", () => {
  it("resends unsent rows after the broker comes back; nothing lost", async () => {
    let broker = await startEmbeddedBroker();
    const port = broker.port;
    const db = openSqlite(":memory:");
    const sql = sqlDatabase({ kind: "sqlite", db });
    const outbox = createEventOutbox(sql);
    await outbox.init();
    const siteId = `site-r${process.pid}`;
    const lots = ["L1", "L2", "L3"];
    const sub = await subscriber(broker.url, siteId);
    // reconnectPeriod 0: the test reconnects the publisher itself, after the subscriber is back.
    const pub = mqtt.connect(broker.url, { clientId: "ct-pub-restart", reconnectPeriod: 0 });
    await new Promise((r) => pub.once("connect", r));
    const dispatcher = outbox.startDispatcher(pub, log, { batchSize: 7, pollMs: 50 });
    try {
      await enqueue(sql, outbox, siteId, lots, 1, 10);
      await dispatcher.drained();
      await sub.waitFor(30);

      const back = sub.resubscribed();
      await broker.close();
      // Written while the broker is down: they wait in the outbox.
      await enqueue(sql, outbox, siteId, lots, 11, 25);
      expect(await outbox.pending()).toBeGreaterThan(0);
      broker = await startEmbeddedBroker(port);
      await back;
      pub.reconnect();
      await sub.waitFor(75);
      await dispatcher.drained();
      expect(await outbox.pending()).toBe(0);
      checkDelivery(sub.seen, siteId, lots, 25);
      // Sent rows can be pruned; unsent ones never are.
      await dispatcher.stop();
      await enqueue(sql, outbox, siteId, ["L-unsent"], 1, 1);
      expect(await outbox.prune(Date.now() + 1)).toBe(75);
      expect((await outbox.rows()).map((r) => r.eventId)).toEqual([`lot-${siteId}-L-unsent-1`]);
    } finally {
      await dispatcher.stop();
      await pub.endAsync(true);
      await sub.close();
      await broker.close();
      db.close();
    }
  });
});

interface ScenarioDb {
  db: RecordDb;
  /** What the child process opens: a SQLite path or a postgres:// connection string. */
  spec: string;
  close(): Promise<void>;
}

function sqliteFile(): ScenarioDb {
  const dir = mkdtempSync(path.join(tmpdir(), "ct-outbox-"));
  const spec = path.join(dir, "records.db");
  const db = openSqlite(spec);
  return {
    db: { kind: "sqlite", db },
    spec,
    close: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function pgSchema(): Promise<ScenarioDb> {
  const schema = await freshPgSchema("ct_outbox");
  const pool = new pg.Pool({ connectionString: schema.connectionString, max: 2 });
  return {
    db: { kind: "postgres", pool },
    spec: schema.connectionString,
    close: async () => {
      await pool.end();
      await schema.drop();
    },
  };
}

async function killNineScenario(url: string, siteId: string, store: ScenarioDb) {
  const dbPath = store.spec;
  const sql = sqlDatabase(store.db);
  const outbox = createEventOutbox(sql);
  await outbox.init();
  const lots = ["La", "Lb", "Lc", "Ld"];
  const perLot = 30;
  await enqueue(sql, outbox, siteId, lots, 1, perLot);
  const total = lots.length * perLot;
  const sub = await subscriber(url, siteId);
  const child = (delayMs: number): ChildProcess =>
    spawn(
      process.execPath,
      [path.join(import.meta.dirname, "dispatcher-child.ts"), dbPath, url, String(delayMs)],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
  try {
    const first = child(4);
    const exited = new Promise((r) => first.once("exit", r));
    await sub.waitFor(Math.floor(total / 3));
    first.kill("SIGKILL");
    await exited;
    const left = await outbox.pending();
    expect(left).toBeGreaterThan(0); // killed mid-dispatch: unacknowledged rows are still there
    const second = child(0);
    try {
      await sub.waitFor(total);
      while ((await outbox.pending()) > 0) await new Promise((r) => setTimeout(r, 20));
    } finally {
      const gone = new Promise((r) => second.once("exit", r));
      second.kill("SIGKILL");
      await gone;
    }
    checkDelivery(sub.seen, siteId, lots, perLot);
  } finally {
    await sub.close();
    await store.close();
  }
}

describe("outbox: kill -9 of the dispatcher's process (embedded aedes)", () => {
  let broker: Awaited<ReturnType<typeof startEmbeddedBroker>>;
  beforeAll(async () => {
    broker = await startEmbeddedBroker();
  });
  afterAll(async () => {
    await broker?.close();
  });
  it("a restarted process sends what the killed one had not got acknowledged", async () => {
    await killNineScenario(broker.url, `site-k${process.pid}`, sqliteFile());
  });
});

const mosquitto = await requireService("mosquitto");
describe.skipIf(!mosquitto.available)(
  `outbox: kill -9 of the dispatcher's process (Mosquitto) ${mosquitto.reason}`,
  () => {
    it("a restarted process sends what the killed one had not got acknowledged", async () => {
      await killNineScenario(mqttUrl(), `site-m${process.pid}-${Date.now() % 100000}`, sqliteFile());
    });
  },
);

const postgres = await requireService("postgres");
describe.skipIf(!mosquitto.available || !postgres.available)(
  `outbox on PostgreSQL: kill -9 of the dispatcher's process (Mosquitto) ${mosquitto.reason} ${postgres.reason}`,
  () => {
    it("a restarted process sends what the killed one had not got acknowledged", async () => {
      await killNineScenario(mqttUrl(), `site-p${process.pid}-${Date.now() % 100000}`, await pgSchema());
    });
  },
);
