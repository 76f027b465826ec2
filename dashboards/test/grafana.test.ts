/**
 * The provisioned Grafana dashboard queries the InfluxDB layout the gateway writes. We load
 * readings through the gateway's own Influx ReadingStore into a real influxd, expand the
 * dashboard's template variables the way Grafana does, and run every panel query.
 */
import { readFileSync } from "node:fs";
import type { StoredReading } from "@coldtrace/gateway/storage";
import { createInfluxReadingStore, createSeqLedger, INFLUX_MEASUREMENT } from "@coldtrace/gateway/storage";
import { type InfluxdHandle, requireService, startInfluxd } from "@coldtrace/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

interface Target {
  query: string;
}
interface Panel {
  title: string;
  targets: Target[];
}
const dashboard = JSON.parse(
  readFileSync(new URL("../grafana/dashboards/coldtrace-units.json", import.meta.url), "utf8"),
) as { uid: string; panels: Panel[]; templating: { list: { name: string; query: string }[] } };

const t0 = Date.UTC(2026, 10, 25, 0, 0, 0);
const from = t0;
const to = t0 + 3_600_000;

function expand(query: string): string {
  return query
    .replaceAll("$site", "store-1")
    .replaceAll("$unit", "fridge-1|box-2")
    .replaceAll("$timeFilter", `time >= ${from}ms AND time <= ${to}ms`)
    .replaceAll("$__interval", "10m");
}

describe("dashboard JSON", () => {
  it("every panel has a raw InfluxQL query on the gateway's measurement", () => {
    expect(dashboard.panels.length).toBeGreaterThan(0);
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const t of panel.targets) expect(t.query).toContain(`FROM "${INFLUX_MEASUREMENT}"`);
    }
  });
});

const influxd = await requireService("influxd");
describe.skipIf(!influxd.available)(`dashboard queries against a real influxd ${influxd.reason}`, () => {
  let handle: InfluxdHandle;
  const database = "coldtrace";

  beforeAll(async () => {
    handle = await startInfluxd();
    const store = await createInfluxReadingStore(
      { url: handle.url, database },
      { dedupe: createSeqLedger() },
    );
    const readings: StoredReading[] = [];
    let seq = 1;
    for (let i = 0; i < 360; i++) {
      const observedAt = t0 + i * 10_000;
      for (const [unitId, probeId] of [
        ["fridge-1", "fridge-1-top"],
        ["box-2", "box-2-core"],
      ] as const) {
        const fault = unitId === "box-2" && i % 60 === 0;
        readings.push({
          agentId: "pi-1",
          seq: seq++,
          siteId: "store-1",
          unitId,
          probeId,
          observedAt,
          receivedAt: observedAt + 50,
          tempC: fault ? null : unitId === "fridge-1" ? 4 + (i % 10) / 10 : i < 180 ? 5 : 9.5,
          quality: fault ? "sensor_fault" : "ok",
          backfill: false,
        });
      }
    }
    await store.append(readings);
    await store.close();
  });
  afterAll(async () => {
    await handle?.stop();
  });

  async function run(query: string): Promise<{
    series?: { name: string; tags?: Record<string, string>; values: unknown[][] }[];
    error?: string;
  }> {
    const res = await fetch(`${handle.url}/query?db=${database}&epoch=ms&q=${encodeURIComponent(query)}`);
    const body = (await res.json()) as { results: { series?: never; error?: string }[] };
    return body.results[0]!;
  }

  it("template variable queries list the sites and units", async () => {
    const site = dashboard.templating.list.find((v) => v.name === "site")!;
    const unit = dashboard.templating.list.find((v) => v.name === "unit")!;
    const sites = await run(site.query);
    expect(sites.series?.[0]?.values.map((v) => v[1])).toEqual(["store-1"]);
    const units = await run(expand(unit.query));
    expect(units.series?.[0]?.values.map((v) => v[1]).sort()).toEqual(["box-2", "fridge-1"]);
  });

  it.each(dashboard.panels.map((p) => [p.title, p]))(
    "%s: returns data per unit/probe",
    async (_title, panel) => {
      for (const target of (panel as Panel).targets) {
        const result = await run(expand(target.query));
        expect(result.error).toBeUndefined();
        expect(result.series?.length ?? 0).toBeGreaterThan(0);
      }
    },
  );

  it("the temperature panel shows the box's excursion and excludes faults", async () => {
    const panel = dashboard.panels.find((p) => p.title.startsWith("Temperature per probe"))!;
    const result = await run(expand(panel.targets[0]!.query));
    const box = result.series!.find((s) => s.tags?.unit === "box-2")!;
    const means = box.values.map((v) => v[1] as number);
    expect(Math.max(...means)).toBeCloseTo(9.5, 5);
    expect(Math.min(...means)).toBeCloseTo(5, 5);
    const faults = dashboard.panels.find((p) => p.title.startsWith("Probe faults"))!;
    const counted = await run(expand(faults.targets[0]!.query));
    const total = counted
      .series!.flatMap((s) => s.values.map((v) => v[1] as number))
      .reduce((a, b) => a + b, 0);
    expect(total).toBe(6);
  });
});
