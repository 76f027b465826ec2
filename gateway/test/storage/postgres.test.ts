/** The PostgreSQL backend against both contracts, each in a fresh schema of the real server. */

import { Writable } from "node:stream";
import { freshPgSchema, type PgSchema, requireService } from "@coldtrace/testkit";
import pg from "pg";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { createPgPool, createPgReadingStore, createPgRecordStore } from "../../src/storage/postgres.ts";
import { fixture, readingStoreContract, T0 } from "./reading-store.contract.ts";
import { recordStoreContract } from "./record-store.contract.ts";

const postgres = await requireService("postgres");

describe.skipIf(!postgres.available)(`PostgreSQL storage ${postgres.reason}`, () => {
  const schemas: PgSchema[] = [];
  const pools: pg.Pool[] = [];
  async function pool(): Promise<pg.Pool> {
    const schema = await freshPgSchema("ct_store");
    schemas.push(schema);
    const p = createPgPool(schema.connectionString);
    pools.push(p);
    return p;
  }
  afterAll(async () => {
    for (const p of pools) await p.end();
    for (const s of schemas) await s.drop();
  });

  readingStoreContract("postgres", async () => createPgReadingStore(await pool()));
  recordStoreContract("postgres", async () => createPgRecordStore(await pool()));

  describe("PostgreSQL specifics", () => {
    it("reports a bad row as CT_STORE_IO instead of returning it", async () => {
      const p = await pool();
      const store = await createPgReadingStore(p);
      const f = fixture();
      await store.append([f.reading(1)]);
      await p.query("UPDATE readings SET quality = 'melted' WHERE agent_id = $1", [f.agentId]);
      await expect(store.range({ unitId: f.unitId, from: T0, to: T0 + 10_000 })).rejects.toMatchObject({
        code: "CT_STORE_IO",
        context: expect.objectContaining({ backend: "postgres", field: "quality" }),
      });
    });

    it("rolls back the whole batch when one row fails, with CT_STORE_IO", async () => {
      const p = await pool();
      const store = await createPgReadingStore(p);
      await p.query("ALTER TABLE readings ADD CONSTRAINT no_p9 CHECK (probe_id <> 'p9')");
      const f = fixture();
      await expect(store.append([f.reading(1), f.reading(2, { probeId: "p9" })])).rejects.toMatchObject({
        code: "CT_STORE_IO",
        context: expect.objectContaining({ backend: "postgres", op: "append readings" }),
      });
      expect(await store.range({ unitId: f.unitId, from: T0, to: T0 + 10_000 })).toEqual([]);
    });

    it("reports an unreachable server as CT_STORE_IO", async () => {
      const p = createPgPool("postgres://postgres@127.0.0.1:1/test?connect_timeout=2");
      pools.push(p);
      await expect(createPgRecordStore(p)).rejects.toMatchObject({ code: "CT_STORE_IO" });
    });

    it("survives the server closing an idle connection: logs it at warn and reconnects", async () => {
      const schema = await freshPgSchema("ct_store");
      schemas.push(schema);
      const logged: Record<string, unknown>[] = [];
      let onLog: () => void = () => {};
      const lost = new Promise<void>((resolve) => {
        onLog = resolve;
      });
      const stream = new Writable({
        write(chunk, _encoding, done) {
          logged.push(JSON.parse(String(chunk)));
          onLog();
          done();
        },
      });
      const p = createPgPool(schema.connectionString, { log: pino(stream), max: 1 });
      pools.push(p);
      const store = await createPgRecordStore(p);
      const { rows } = await p.query("SELECT pg_backend_pid() AS pid");
      const admin = new pg.Client({ connectionString: schema.url });
      await admin.connect();
      await admin.query("SELECT pg_terminate_backend($1)", [rows[0].pid]);
      await admin.end();
      await lost;
      expect(logged[0]).toMatchObject({ level: 40, msg: "idle postgres connection lost" });
      await store.upsertUnit({ unitId: "u1", siteId: "s1", kind: "fridge" });
      expect(await store.getUnit("u1")).toEqual({ unitId: "u1", siteId: "s1", kind: "fridge" });
    });

    it("lets two instances append the same readings concurrently: each stored once", async () => {
      const p = await pool();
      const a = await createPgReadingStore(p);
      const b = await createPgReadingStore(p);
      const f = fixture();
      const batch = Array.from({ length: 500 }, (_, i) => f.reading(i + 1));
      const [ra, rb] = await Promise.all([a.append(batch), b.append(batch)]);
      expect(ra.inserted.length + rb.inserted.length).toBe(500);
      expect(ra.duplicates + rb.duplicates).toBe(500);
    });
  });
});
