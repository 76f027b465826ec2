/** The InfluxDB 1.x backend against the ReadingStore contract on a real influxd, plus its ledger. */

import type { DatabaseSync } from "node:sqlite";
import { type InfluxdHandle, requireService, startInfluxd } from "@coldtrace/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { createInfluxReadingStore } from "../../src/storage/influx.ts";
import {
  createSeqLedger,
  createSqliteSeqLedger,
  memoryLedgerBackend,
  type SeqLedgerBackend,
} from "../../src/storage/seq-ledger.ts";
import { openSqlite } from "../../src/storage/sqlite.ts";
import { fixture, readingStoreContract, T0, uid } from "./reading-store.contract.ts";

const influxd = await requireService("influxd");

describe.skipIf(!influxd.available)(`InfluxDB 1.x storage ${influxd.reason}`, () => {
  let handle: InfluxdHandle | undefined;
  const dbs: DatabaseSync[] = [];
  async function server(): Promise<InfluxdHandle> {
    handle ??= await startInfluxd();
    return handle;
  }
  function ledgerDb(): DatabaseSync {
    const db = openSqlite(":memory:");
    dbs.push(db);
    return db;
  }
  afterAll(async () => {
    for (const db of dbs) db.close();
    await handle?.stop();
  });

  readingStoreContract("influx", async () => {
    const h = await server();
    return createInfluxReadingStore(
      { url: h.url, database: uid("ct").replace("-", "_") },
      { dedupe: createSqliteSeqLedger(ledgerDb()) },
    );
  });

  describe("InfluxDB specifics", () => {
    const ALL = { from: T0, to: T0 + 86_400_000 };

    it("writes site, unit, probe and quality as tags and the rest as typed fields", async () => {
      const h = await server();
      const database = uid("ct").replace("-", "_");
      const store = await createInfluxReadingStore({ url: h.url, database }, { dedupe: createSeqLedger() });
      const f = fixture();
      await store.append([f.reading(1), f.reading(2, { tempC: null, quality: "comm_error" })]);
      const q = async (stmt: string) => {
        const res = await fetch(`${h.url}/query?db=${database}&q=${encodeURIComponent(stmt)}`);
        const body = (await res.json()) as { results: { series?: { values: unknown[][] }[] }[] };
        return body.results[0]?.series?.[0]?.values ?? [];
      };
      expect((await q("SHOW TAG KEYS FROM reading")).flat().sort()).toEqual([
        "probe",
        "quality",
        "site",
        "unit",
      ]);
      expect(await q("SHOW FIELD KEYS FROM reading")).toEqual(
        expect.arrayContaining([
          ["tempC", "float"],
          ["seq", "integer"],
          ["agent", "string"],
          ["receivedAt", "integer"],
          ["backfill", "boolean"],
        ]),
      );
    });

    it("remembers seen seqs across a restart through the ledger in the record database", async () => {
      const h = await server();
      const database = uid("ct").replace("-", "_");
      const db = ledgerDb();
      const f = fixture();
      const first = await createInfluxReadingStore(
        { url: h.url, database },
        { dedupe: createSqliteSeqLedger(db) },
      );
      await first.append([f.reading(1), f.reading(2), f.reading(3)]);
      await first.close();
      const second = await createInfluxReadingStore(
        { url: h.url, database },
        { dedupe: createSqliteSeqLedger(db) },
      );
      expect(await second.append([f.reading(3), f.reading(4)])).toEqual({
        inserted: [f.reading(4)],
        duplicates: 1,
      });
    });

    it("is crash-safe: a write whose ledger commit failed is written again on resend, stored once", async () => {
      const h = await server();
      const database = uid("ct").replace("-", "_");
      const inner = memoryLedgerBackend();
      let failSave = true;
      const backend: SeqLedgerBackend = {
        load: inner.load,
        async save(changes) {
          if (failSave) throw new Error("ledger disk full");
          await inner.save(changes);
        },
      };
      const store = await createInfluxReadingStore(
        { url: h.url, database },
        { dedupe: createSeqLedger(backend) },
      );
      const f = fixture();
      const batch = [f.reading(1), f.reading(2)];
      await expect(store.append(batch)).rejects.toThrow("ledger disk full");
      failSave = false;
      expect(await store.append(batch)).toEqual({ inserted: batch, duplicates: 0 });
      expect(await store.range({ unitId: f.unitId, ...ALL })).toEqual(batch);
      expect(await store.append(batch)).toEqual({ inserted: [], duplicates: 2 });
    });

    it("serialises concurrent appends so a reading is new in only one of them", async () => {
      const h = await server();
      const store = await createInfluxReadingStore(
        { url: h.url, database: uid("ct").replace("-", "_") },
        { dedupe: createSeqLedger() },
      );
      const f = fixture();
      const batch = Array.from({ length: 300 }, (_, i) => f.reading(i + 1));
      const [a, b] = await Promise.all([store.append(batch), store.append(batch.slice(100))]);
      expect(a.inserted.length + b.inserted.length).toBe(300);
      expect(b.duplicates).toBe(200);
    });

    it("fails an overlapping append whose readings were in a failed write, so they get resent", async () => {
      const h = await server();
      const inner = memoryLedgerBackend();
      let failSave = true;
      const backend: SeqLedgerBackend = {
        load: inner.load,
        async save(changes) {
          if (failSave) throw new Error("ledger disk full");
          await inner.save(changes);
        },
      };
      const store = await createInfluxReadingStore(
        { url: h.url, database: uid("ct").replace("-", "_") },
        { dedupe: createSeqLedger(backend) },
      );
      const f = fixture();
      const batch = Array.from({ length: 50 }, (_, i) => f.reading(i + 1));
      const [a, b] = await Promise.allSettled([store.append(batch), store.append(batch.slice(10, 20))]);
      expect(a).toMatchObject({ status: "rejected", reason: { code: "CT_STORE_IO" } });
      expect(b).toMatchObject({
        status: "rejected",
        reason: { code: "CT_STORE_IO", context: expect.objectContaining({ op: "append readings" }) },
      });
      failSave = false;
      expect((await store.append(batch.slice(10, 20))).inserted).toHaveLength(10);
      expect((await store.append(batch)).inserted).toHaveLength(40);
    });

    it("reports an unreachable influxd as CT_STORE_IO and records nothing in the ledger", async () => {
      const ledger = createSeqLedger();
      await expect(
        createInfluxReadingStore({ url: "http://127.0.0.1:1", database: "ct" }, { dedupe: ledger }),
      ).rejects.toMatchObject({
        code: "CT_STORE_IO",
        context: expect.objectContaining({ backend: "influx" }),
      });
    });

    it("reports a refused write and a bad point as CT_STORE_IO, and leaves the ledger untouched", async () => {
      const h = await server();
      const database = uid("ct").replace("-", "_");
      const f = fixture();
      // Someone else wrote `seq` as a string into the database first: the field type conflicts,
      // influxd refuses our writes (400), and reading that point back is bad data.
      const created = await fetch(`${h.url}/query?q=${encodeURIComponent(`CREATE DATABASE ${database}`)}`, {
        method: "POST",
      });
      expect(created.status).toBe(200);
      const written = await fetch(`${h.url}/write?db=${database}&precision=ms`, {
        method: "POST",
        body: `reading,site=${f.siteId},unit=${f.unitId},probe=p1,quality=ok seq="text",agent="a",receivedAt=1i,backfill=F ${T0}`,
      });
      expect(written.status).toBe(204);
      const ledger = createSeqLedger();
      const store = await createInfluxReadingStore({ url: h.url, database }, { dedupe: ledger });
      await expect(store.append([f.reading(2)])).rejects.toMatchObject({
        code: "CT_STORE_IO",
        context: expect.objectContaining({ backend: "influx", op: "append readings" }),
      });
      expect(await ledger.intervals(f.agentId)).toEqual([]);
      await expect(store.range({ unitId: f.unitId, ...ALL })).rejects.toMatchObject({
        code: "CT_STORE_IO",
        context: expect.objectContaining({ backend: "influx", field: "seq" }),
      });
    });
  });
});
