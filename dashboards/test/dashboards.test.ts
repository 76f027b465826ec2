/**
 * The provisioned Grafana dashboards against what the gateway really writes. Every dashboard's
 * JSON is checked (structure, the provisioned datasource uid, template variables); then a real
 * gateway (embedded broker, SQLite records, readings and status series in a real influxd) gets
 * agents' births, telemetry with two excursions, health and an offline agent over MQTT, and
 * every template variable query, panel query and annotation query is run as Grafana would run
 * it (variables expanded, chained): each must return series, with the columns the panels'
 * transformations and annotations name.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  CredentialStore,
  excursionsExtension,
  type GatewayRuntime,
  grafanaExtension,
  openStorage,
  parseGatewayConfig,
  startGateway,
} from "@coldtrace/gateway";
import { encodePayload, formatTopic } from "@coldtrace/protocol";
import { type InfluxdHandle, requireService, startInfluxd } from "@coldtrace/testkit";
import { connectAsync, type MqttClient } from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";

const grafana = path.resolve(import.meta.dirname, "../grafana");
const DS_UID = "coldtrace-influx";
/** How often the grafana extension writes a status sample here. */
const TICK_MS = 200;

interface Target {
  refId: string;
  query: string;
  rawQuery?: boolean;
  datasource?: { uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource: { type: string; uid: string };
  targets: Target[];
  transformations?: { id: string; options: { configRefId?: string; mappings?: { fieldName: string }[] } }[];
}
interface Variable {
  name: string;
  type: string;
  query: string;
  datasource: { uid: string };
  multi: boolean;
  includeAll: boolean;
}
interface Annotation {
  name: string;
  datasource: { uid: string };
  builtIn?: number;
  target?: Target & { textColumn: string; timeEndColumn?: string; tagsColumn?: string };
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: Annotation[] };
}

const files = (await readdir(path.join(grafana, "dashboards"))).filter((f) => f.endsWith(".json")).sort();
const dashboards: [string, Dashboard][] = await Promise.all(
  files.map(
    async (f) =>
      [f, JSON.parse(await readFile(path.join(grafana, "dashboards", f), "utf8")) as Dashboard] as const,
  ),
);
/** Every InfluxQL query of a dashboard, with where it is. */
function queries(d: Dashboard): { where: string; query: string }[] {
  return [
    ...d.templating.list.map((v) => ({ where: `variable ${v.name}`, query: v.query })),
    ...d.panels.flatMap((p) => p.targets.map((t) => ({ where: `${p.title} ${t.refId}`, query: t.query }))),
    ...d.annotations.list.flatMap((a) =>
      a.target ? [{ where: `annotation ${a.name}`, query: a.target.query }] : [],
    ),
  ];
}
/** Grafana's own macros and per-series aliases, not template variables. */
const BUILTIN = new Set(["timeFilter", "__interval", "__interval_ms", "col"]);

describe("dashboard JSON", () => {
  it("the four dashboards are there, each with a unique uid", () => {
    expect(files).toEqual([
      "coldtrace-fleet.json",
      "coldtrace-health.json",
      "coldtrace-ingest.json",
      "coldtrace-unit.json",
    ]);
    expect(new Set(dashboards.map(([, d]) => d.uid)).size).toBe(dashboards.length);
  });

  it("the datasource uid is the provisioned one everywhere", async () => {
    const ds = parse(
      await readFile(path.join(grafana, "provisioning/datasources/coldtrace.yaml"), "utf8"),
    ) as {
      datasources: { uid: string; type: string }[];
    };
    expect(ds.datasources.map((d) => [d.uid, d.type])).toEqual([[DS_UID, "influxdb"]]);
    for (const [file, d] of dashboards) {
      for (const p of d.panels) {
        expect(p.datasource.uid, `${file}: ${p.title}`).toBe(DS_UID);
        for (const t of p.targets) expect(t.datasource?.uid, `${file}: ${p.title} ${t.refId}`).toBe(DS_UID);
      }
      for (const v of d.templating.list) expect(v.datasource.uid, `${file}: $${v.name}`).toBe(DS_UID);
      for (const a of d.annotations.list.filter((a) => !a.builtIn))
        expect(a.datasource.uid, `${file}: ${a.name}`).toBe(DS_UID);
    }
  });

  it.each(dashboards)("%s: panels are laid out, described and raw InfluxQL with unique refIds", (_f, d) => {
    expect(d.title).toMatch(/^Coldtrace — /);
    expect(d.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(new Set(d.panels.map((p) => p.id)).size).toBe(d.panels.length);
    for (const p of d.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      expect(p.description?.length ?? 0, `${p.title} has a description`).toBeGreaterThan(20);
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      expect(new Set(p.targets.map((t) => t.refId)).size, p.title).toBe(p.targets.length);
      for (const t of p.targets) expect(t.rawQuery, `${p.title} ${t.refId}`).toBe(true);
      for (const tr of p.transformations ?? []) {
        if (tr.id !== "configFromData") continue;
        expect(
          p.targets.map((t) => t.refId),
          `${p.title}: configRefId`,
        ).toContain(tr.options.configRefId);
      }
    }
  });

  it.each(dashboards)(
    "%s: every variable a query uses is defined, before the queries that use it",
    (_f, d) => {
      const defined: string[] = [];
      for (const v of d.templating.list) {
        for (const m of v.query.matchAll(/\$(\w+)/g))
          expect(defined, `$${v.name} uses $${m[1]}`).toContain(m[1]);
        defined.push(v.name);
      }
      for (const { where, query } of queries(d)) {
        for (const m of query.matchAll(/\$(\w+)/g)) {
          const name = m[1] as string;
          if (!BUILTIN.has(name)) expect(defined, `${where} uses $${name}`).toContain(name);
        }
      }
    },
  );
});

const influxd = await requireService("influxd");
describe.skipIf(!influxd.available)(
  `dashboard queries against what the gateway writes ${influxd.reason}`,
  () => {
    const database = "coldtrace";
    const site = "store-12";
    let handle: InfluxdHandle;
    let dir: string;
    let gw: GatewayRuntime;
    const clients: MqttClient[] = [];
    const now = Date.now();
    const calibrationDueAt = now + 20 * 86_400_000;

    async function influxql(q: string): Promise<{
      series?: { name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }[];
      error?: string;
    }> {
      const res = await fetch(`${handle.url}/query?db=${database}&epoch=ms&q=${encodeURIComponent(q)}`);
      const body = (await res.json()) as { results: { series?: never; error?: string }[]; error?: string };
      if (body.error) return { error: body.error };
      return body.results[0] ?? { error: "no result" };
    }
    async function last(measurement: string, field: string, where: string): Promise<unknown> {
      const r = await influxql(`SELECT last("${field}") FROM "${measurement}" WHERE ${where}`);
      return r.series?.[0]?.values[0]?.[1];
    }

    async function agent(agentId: string, secret: string): Promise<MqttClient> {
      const c = await connectAsync(gw.brokerUrl, {
        clientId: agentId,
        username: agentId,
        password: secret,
        reconnectPeriod: 0,
      });
      clients.push(c);
      return c;
    }
    function birth(agentId: string, units: { unitId: string; kind: "fridge" | "transit_box" }[]) {
      return encodePayload("birth", {
        v: 1,
        agentId,
        siteId: site,
        sessionId: `s-${agentId}`,
        agentVersion: "0.1.0",
        configHash: "a".repeat(64),
        startedAt: now - 7_200_000,
        nextSeq: 1,
        units: units.map((u) => ({ ...u, probeIds: [`${u.unitId}-top`, `${u.unitId}-bottom`] })),
        probes: units.flatMap((u) =>
          ["top", "bottom"].map((p) => ({
            probeId: `${u.unitId}-${p}`,
            unitId: u.unitId,
            driver: "modbus-rtu" as const,
            intervalMs: 30_000,
            calibrationDueAt,
          })),
        ),
      });
    }

    beforeAll(async () => {
      handle = await startInfluxd();
      dir = await mkdtemp(path.join(tmpdir(), "ct-dash-"));
      const credentials = new CredentialStore();
      const secrets: Record<string, string> = {};
      for (const id of ["pi-fridge-3", "pi-box-7"])
        secrets[id] = (
          await credentials.add({ username: id, role: "agent", siteIds: [site], agentId: id })
        ).secret;
      const config = parseGatewayConfig(
        {
          gatewayId: "gw-dash",
          broker: { host: "127.0.0.1", port: 0 },
          api: { enabled: false },
          storage: {
            records: { backend: "sqlite", path: "coldtrace.db" },
            readings: { backend: "influx", url: handle.url, database },
          },
        },
        "test",
        dir,
      );
      gw = await startGateway({
        config,
        log: pino({ level: "silent" }),
        storage: await openStorage(config.storage),
        credentials,
        extensions: [excursionsExtension(), grafanaExtension({ sampleIntervalMs: TICK_MS })],
      });

      // A fridge with an action excursion an hour ago, now back in range; a transit box warm now.
      const fridge = await agent("pi-fridge-3", secrets["pi-fridge-3"] as string);
      await fridge.publishAsync(
        formatTopic({ kind: "birth", siteId: site, agentId: "pi-fridge-3" }),
        birth("pi-fridge-3", [{ unitId: "fridge-2", kind: "fridge" }]),
        { qos: 1 },
      );
      const box = await agent("pi-box-7", secrets["pi-box-7"] as string);
      await box.publishAsync(
        formatTopic({ kind: "birth", siteId: site, agentId: "pi-box-7" }),
        birth("pi-box-7", [{ unitId: "box-7", kind: "transit_box" }]),
        { qos: 1 },
      );
      const start = now - 90 * 60_000;
      let seq = 0;
      for (const [client, agentId, unitId, temp] of [
        [fridge, "pi-fridge-3", "fridge-2", (m: number) => (m >= 30 && m < 50 ? 13 : 5)],
        [box, "pi-box-7", "box-7", (m: number) => (m >= 70 ? 10 : 5)],
      ] as const) {
        for (let batch = 0; batch < 9; batch++) {
          const readings = [];
          for (let i = batch * 20; i < batch * 20 + 20 && i < 179; i++) {
            for (const p of ["top", "bottom"]) {
              const fault = p === "bottom" && i % 40 === 7;
              readings.push({
                seq: ++seq,
                probeId: `${unitId}-${p}`,
                observedAt: start + i * 30_000,
                tempC: fault ? null : temp(i / 2),
                quality: fault ? ("sensor_fault" as const) : ("ok" as const),
              });
            }
          }
          await client.publishAsync(
            formatTopic({ kind: "telemetry", siteId: site, agentId, unitId }),
            encodePayload("telemetry", {
              v: 1,
              agentId,
              unitId,
              sessionId: `s-${agentId}`,
              sentAt: now,
              readings,
            }),
            { qos: 1 },
          );
        }
      }
      await fridge.publishAsync(
        formatTopic({ kind: "probeHealth", siteId: site, agentId: "pi-fridge-3" }),
        encodePayload("probeHealth", {
          v: 1,
          agentId: "pi-fridge-3",
          at: now,
          probes: ["top", "bottom"].map((p) => ({
            probeId: `fridge-2-${p}`,
            unitId: "fridge-2",
            calibrationDueAt,
            calibrationOverdue: false,
            faults: { sensor_fault: p === "bottom" ? 5 : 0, out_of_range: 0, comm_error: 1, stale: 0 },
            consecutiveFailures: 0,
            lastOkAt: now - 30_000,
          })),
          outbox: { depth: 42, oldestObservedAt: now - 120_000, evictedTotal: 0 },
        }),
        { qos: 1 },
      );
      // The box's agent goes away (its last will, or an orderly shutdown).
      await box.publishAsync(
        formatTopic({ kind: "agentState", siteId: site, agentId: "pi-box-7" }),
        encodePayload("agentState", {
          v: 1,
          agentId: "pi-box-7",
          state: "offline",
          sessionId: "s-pi-box-7",
          at: now,
          reason: "shutdown",
        }),
        { qos: 1, retain: true },
      );

      // Wait for the gateway's samples to show all of it (events, not time).
      const deadline = Date.now() + 30_000;
      for (;;) {
        const [boxState, fridgeOpen, depth, online, stored, samples] = await Promise.all([
          last("unit_status", "state", `"unit" = 'box-7'`),
          last("excursion", "open", `"unit" = 'fridge-2'`),
          last("agent_status", "outboxDepth", `"agent" = 'pi-fridge-3'`),
          last("agent_status", "online", `"agent" = 'pi-box-7'`),
          last("gateway_ingest", "readingsStored", `"gateway" = 'gw-dash'`),
          influxql(`SELECT count("readingsStored") FROM "gateway_ingest"`).then(
            (r) => r.series?.[0]?.values[0]?.[1],
          ),
        ]);
        const done = boxState === "alert" && fridgeOpen === 0 && depth === 42 && online === 0;
        // …and a few samples of the counters since, for the rates.
        if (done && stored === 2 * 179 * 2 && (samples as number) >= 5) break;
        if (Date.now() > deadline)
          throw new Error(
            `status series incomplete: ${JSON.stringify({ boxState, fridgeOpen, depth, online, stored })}`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    }, 60_000);
    afterAll(async () => {
      for (const c of clients) c.end(true);
      await gw?.stop();
      await handle?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    /** Expand a query as Grafana does: variables (multi-value as a regex group), $timeFilter, $__interval. */
    function expand(query: string, values: Map<string, string[]>, intervalMs = 60_000): string {
      let q = query
        .replaceAll("$timeFilter", "time >= now() - 3h AND time <= now() + 10m")
        .replaceAll("$__interval_ms", String(intervalMs))
        .replaceAll("$__interval", `${intervalMs}ms`);
      for (const [name, vs] of values)
        q = q.replaceAll(`$${name}`, vs.length === 1 ? (vs[0] as string) : `(${vs.join("|")})`);
      return q;
    }
    /** Run the variables in order, each with the values of those before it (every value: "All"). */
    async function variables(d: Dashboard): Promise<Map<string, string[]>> {
      const values = new Map<string, string[]>();
      for (const v of d.templating.list) {
        const r = await influxql(expand(v.query, values));
        expect(r.error, `$${v.name}`).toBeUndefined();
        const found = (r.series ?? []).flatMap((s) => s.values.map((row) => String(row[1])));
        expect(found.length, `$${v.name} has values`).toBeGreaterThan(0);
        values.set(v.name, v.multi || v.includeAll ? found : found.slice(0, 1));
      }
      return values;
    }

    it("the unit detail's variables pick the site, a unit of it and its probes", async () => {
      const d = dashboards.find(([f]) => f === "coldtrace-unit.json")?.[1] as Dashboard;
      const values = await variables(d);
      expect(values.get("site")).toEqual([site]);
      expect(["box-7", "fridge-2"]).toContain(values.get("unit")?.[0]);
    });

    it.each(dashboards)(
      "%s: every template variable, panel and annotation query returns series",
      async (_f, d) => {
        const values = await variables(d);
        // The gateway's counters have been sampled for a second or two: look at them as Grafana
        // would over a short range, in tick-sized intervals (rates need two of them).
        const intervalMs = d.uid === "coldtrace-ingest" ? TICK_MS : 60_000;
        // The unit detail is looked at for the fridge (whose excursion is closed).
        if (values.has("unit")) {
          values.set("unit", ["fridge-2"]);
          values.set("probe", ["fridge-2-top", "fridge-2-bottom"]);
        }
        for (const p of d.panels) {
          const columns = new Map<string, Set<string>>();
          for (const t of p.targets) {
            const r = await influxql(expand(t.query, values, intervalMs));
            expect(r.error, `${p.title} ${t.refId}`).toBeUndefined();
            expect(r.series?.length ?? 0, `${p.title} ${t.refId} returns series`).toBeGreaterThan(0);
            columns.set(t.refId, new Set((r.series ?? []).flatMap((s) => s.columns)));
          }
          for (const tr of p.transformations ?? []) {
            if (tr.id !== "configFromData") continue;
            for (const m of tr.options.mappings ?? [])
              expect(
                [...(columns.get(tr.options.configRefId as string) ?? [])],
                `${p.title}: ${m.fieldName}`,
              ).toContain(m.fieldName);
          }
        }
        for (const a of d.annotations.list) {
          if (!a.target) continue;
          const r = await influxql(expand(a.target.query, values));
          expect(r.error, a.name).toBeUndefined();
          const cols = (r.series ?? []).flatMap((s) => s.columns);
          expect(cols.length, `${a.name} returns series`).toBeGreaterThan(0);
          for (const c of [a.target.textColumn, a.target.timeEndColumn, a.target.tagsColumn])
            if (c) expect(cols, a.name).toContain(c);
        }
      },
    );

    it("the series say what the records say: states, excursions, limits, agents, probes, ingest", async () => {
      expect(await last("unit_status", "state", `"unit" = 'fridge-2'`)).toBe("ok");
      expect(await last("unit_status", "level", `"unit" = 'box-7'`)).toBe(2);
      // The fridge's limits as its profile has them (fridge defaults: 2–8 °C, action 0 / 12 °C; GSP 30 min).
      expect(await last("unit_status", "actionHigh", `"unit" = 'fridge-2'`)).toBe(12);
      expect(await last("unit_status", "recordIntervalS", `"unit" = 'fridge-2'`)).toBe(1800);
      expect(await last("fleet_status", "unitsAlert", `"site" = '${site}'`)).toBe(1);
      expect(await last("fleet_status", "agentsOffline", `"site" = '${site}'`)).toBe(1);
      const exc = await influxql(
        `SELECT "tier", "side", "peakC", "title", "endedAt" FROM "excursion" WHERE "unit" = 'fridge-2'`,
      );
      const [row] = exc.series?.[0]?.values ?? [];
      expect(row?.slice(1, 4)).toEqual(["action", "high", 13]);
      expect(String(row?.[4])).toMatch(/^action excursion \(high\) on fridge-2: peak 13\.0 °C, \d+ min$/);
      expect(row?.[5] as number).toBeGreaterThan(row?.[0] as number);
      const due = (await last("probe_status", "calibrationDueInDays", `"probe" = 'fridge-2-top'`)) as number;
      expect(due).toBeGreaterThan(19.9);
      expect(due).toBeLessThanOrEqual(20);
      expect(await last("probe_status", "faultsTotal", `"probe" = 'fridge-2-bottom'`)).toBe(6);
    });
  },
);
