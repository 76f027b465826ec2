/** createStorage wires each configuration to real backends and closes what it opened. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freshPgSchema, requireService, startInfluxd } from "@coldtrace/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { createStorage } from "../../src/storage/index.ts";
import { fixture, T0, uid } from "./reading-store.contract.ts";

const dir = mkdtempSync(path.join(tmpdir(), "ct-create-storage-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("createStorage", () => {
  it("opens SQLite for records and readings, shares the handle, and closes it", async () => {
    const storage = await createStorage({
      records: { kind: "sqlite", path: path.join(dir, "gw.db") },
      readings: { kind: "sqlite" },
    });
    const f = fixture();
    await storage.readings.append([f.reading(1)]);
    await storage.records.upsertUnit({ unitId: f.unitId, siteId: f.siteId, kind: "fridge" });
    expect(storage.sqlite?.prepare("SELECT count(*) AS n FROM readings").get()).toEqual({ n: 1 });
    expect(storage.pg).toBeUndefined();
    await storage.close();
    expect(storage.sqlite?.isOpen).toBe(false);
  });

  it("refuses readings in a database kind the records do not use, with CT_CFG_INVALID", async () => {
    await expect(
      createStorage({ records: { kind: "sqlite", path: ":memory:" }, readings: { kind: "postgres" } }),
    ).rejects.toMatchObject({
      code: "CT_CFG_INVALID",
      context: expect.objectContaining({ path: "storage.readings.kind" }),
    });
  });
});

const postgres = await requireService("postgres");
describe.skipIf(!postgres.available)(`createStorage with PostgreSQL ${postgres.reason}`, () => {
  it("keeps records and readings in PostgreSQL", async () => {
    const schema = await freshPgSchema("ct_create");
    try {
      const storage = await createStorage({
        records: { kind: "postgres", url: schema.connectionString },
        readings: { kind: "postgres" },
      });
      const f = fixture();
      expect((await storage.readings.append([f.reading(1), f.reading(1)])).duplicates).toBe(1);
      expect(storage.pg).toBeDefined();
      await storage.close();
    } finally {
      await schema.drop();
    }
  });
});

const influxd = await requireService("influxd");
describe.skipIf(!influxd.available)(`createStorage with InfluxDB ${influxd.reason}`, () => {
  it("keeps readings in Influx and the SeqLedger in the SQLite records database", async () => {
    const h = await startInfluxd();
    try {
      const file = path.join(dir, "influx-ledger.db");
      const config = {
        records: { kind: "sqlite" as const, path: file },
        readings: { kind: "influx" as const, url: h.url, database: uid("ct").replace("-", "_") },
      };
      const f = fixture();
      const first = await createStorage(config);
      await first.readings.append([f.reading(1), f.reading(2)]);
      await first.close();
      const second = await createStorage(config);
      expect(await second.readings.append([f.reading(2), f.reading(3)])).toEqual({
        inserted: [f.reading(3)],
        duplicates: 1,
      });
      expect(await second.readings.range({ unitId: f.unitId, from: T0, to: T0 + 60_000 })).toHaveLength(3);
      await second.close();
    } finally {
      await h.stop();
    }
  });
});
