/**
 * The Grafana status writer never fails the gateway: with InfluxDB unreachable a sample
 * resolves false (one warning per outage, not one per sample); with it up, a sample writes.
 * The grafana extension does nothing unless the readings are in InfluxDB. (What the series
 * hold, and that the dashboards' queries find them, is dashboards/test/dashboards.test.ts.)
 */
import { freePort, type InfluxdHandle, requireService, startInfluxd } from "@coldtrace/testkit";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { parseGatewayConfig } from "../../src/config/load.ts";
import { grafanaExtension } from "../../src/grafana/module.ts";
import { createStorage } from "../../src/storage/index.ts";
import { createInfluxStatusWriter } from "../../src/storage/influx-status.ts";

const influxd = await requireService("influxd");

describe("grafana status series", () => {
  let handle: InfluxdHandle | undefined;
  afterAll(async () => {
    await handle?.stop();
  });

  it("is inert unless the readings are in InfluxDB", () => {
    const config = parseGatewayConfig({});
    const ext = grafanaExtension()({ config } as never);
    expect(ext).toEqual({ name: "grafana" });
  });

  it.skipIf(!influxd.available)(
    "a sample with InfluxDB down resolves false and warns once per outage; with it up it writes",
    async () => {
      const storage = await createStorage({
        records: { kind: "sqlite", path: ":memory:" },
        readings: { kind: "sqlite" },
      });
      await storage.records.upsertUnit({ unitId: "fridge-2", siteId: "store-12", kind: "fridge" });
      const warnings: string[] = [];
      const log = pino({ level: "warn" }, { write: (line: string) => warnings.push(JSON.parse(line).msg) });
      const port = await freePort();
      let url = `http://127.0.0.1:${port}`;
      const writer = () =>
        createInfluxStatusWriter(
          { url, database: "coldtrace", gatewayId: "gw-1" },
          { records: storage.records, limitsOf: () => undefined, log },
        );
      const down = writer();
      expect(await down.sample()).toBe(false);
      expect(await down.sample()).toBe(false);
      expect(down.failures).toBe(2);
      expect(warnings).toEqual(["status sample for Grafana not written; retried at every sample"]);

      handle = await startInfluxd();
      url = handle.url;
      const up = writer();
      expect(await up.sample()).toBe(true);
      const res = await fetch(
        `${url}/query?db=coldtrace&q=${encodeURIComponent('SELECT last("state") FROM "unit_status"')}`,
      );
      const body = (await res.json()) as { results: { series?: { values: unknown[][] }[] }[] };
      expect(body.results[0]?.series?.[0]?.values[0]?.[1]).toBe("ok");
      await storage.close();
    },
  );
});
