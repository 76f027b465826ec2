/**
 * The console module in a running gateway (built-in extensions, embedded broker with agent
 * credentials, SQLite), fed by the fleet simulator over MQTT, read over HTTP and the live
 * stream with a real EventSource client (the `eventsource` package the browser bundle uses).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { isColdtraceError } from "@coldtrace/protocol";
import { Fleet } from "@coldtrace/simulators";
import { EventSource } from "eventsource";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../src/api/auth.ts";
import { type GatewayRuntime, startGateway } from "../../src/app/gateway.ts";
import { CredentialStore } from "../../src/broker/credentials.ts";
import { builtinExtensions } from "../../src/cli/builtins.ts";
import { parseGatewayConfig } from "../../src/config/load.ts";
import type { GatewayConfigInput } from "../../src/config/schema.ts";
import { until } from "../ingest/harness.ts";

const MIN = 60_000;

interface Heard {
  event: string;
  id: string;
  data: Record<string, unknown>;
}

/** A browser's live stream: every named event, in order. */
function listen(url: string, token: string | undefined, lastEventId?: string) {
  const heard: Heard[] = [];
  const errors: { code?: number }[] = [];
  const es = new EventSource(`${url}/api/v1/console/live`, {
    fetch: (input, init) =>
      fetch(input, {
        ...init,
        headers: {
          ...init.headers,
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(lastEventId ? { "last-event-id": lastEventId } : {}),
        },
      }),
  });
  for (const name of [
    "hello",
    "readings",
    "unit",
    "alarm",
    "excursion",
    "agent",
    "resync",
    "eligibility",
    "lot",
  ]) {
    es.addEventListener(name, (e) =>
      heard.push({ event: name, id: e.lastEventId, data: JSON.parse(e.data) }),
    );
  }
  es.addEventListener("error", (e) => errors.push({ code: (e as { code?: number }).code }));
  return { es, heard, errors, close: () => es.close() };
}

async function gateway(dir: string, consoleConfig: GatewayConfigInput["console"] = {}) {
  const { token, hash } = generateToken();
  const credentials = new CredentialStore();
  const config = parseGatewayConfig(
    {
      gatewayId: `gw-${path.basename(dir).slice(-6)}`,
      broker: { host: "127.0.0.1", port: 0 },
      api: { host: "127.0.0.1", port: 0, tokens: [{ name: "qa-console", hash }] },
      ingest: { batchMaxDelayMs: 2 },
      storage: { records: { backend: "sqlite", path: "ct.db" }, readings: { backend: "sqlite" } },
      console: consoleConfig,
    },
    "console-test",
    dir,
  );
  const gw = await startGateway({
    config,
    log: pino({ level: "warn" }),
    credentials,
    extensions: builtinExtensions(config),
  });
  return { gw, token, credentials, url: gw.apiUrl as string };
}

describe("console module in a running gateway", () => {
  let dir: string;
  let gw: GatewayRuntime;
  let token: string;
  let url: string;
  let fleet: Fleet;
  const prefix = `cn${Date.now().toString(36).slice(-4)}`;
  const warm = `${prefix}-1-u1`;
  let startAt = 0;

  /** GET with the API token, or with none (`null`). */
  const get = async <T>(p: string, t: string | null = token) => {
    const res = await fetch(`${url}${p}`, {
      headers: t ? { authorization: `Bearer ${t}` } : {},
      redirect: "manual",
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // HTML or empty
    }
    return { status: res.status, headers: res.headers, body: body as T };
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-console-"));
    let credentials: CredentialStore;
    ({ gw, token, url, credentials } = await gateway(dir, {
      sites: { [`${prefix}-1`]: { name: "徐汇店", timeZone: "Asia/Shanghai" } },
      refreshMs: 500,
    }));
    const secrets = new Map<string, string>();
    for (const s of [1, 2]) {
      const agentId = `${prefix}-${s}-pi`;
      const { secret } = await credentials.add({
        username: agentId,
        role: "agent",
        siteIds: [`${prefix}-${s}`],
        agentId,
      });
      secrets.set(agentId, secret);
    }
    startAt = Math.floor(Date.now() / MIN) * MIN - 2 * 60 * MIN;
    fleet = new Fleet({
      url: gw.brokerUrl,
      sites: 2,
      units: 2,
      probes: 2,
      sitePrefix: prefix,
      intervalMs: MIN,
      startAt,
      // Fridge 1 of site 1: 14 °C from minute 100 on (beyond the action limit, 12 °C).
      excursions: [{ site: 0, unit: 0, afterMs: 100 * MIN, durationMs: 4 * 60 * MIN, tempC: 14 }],
      credentials: (a) => ({ username: a.agentId, password: secrets.get(a.agentId) as string }),
    });
    await fleet.start();
    await fleet.advanceTo(startAt + 90 * MIN);
    await until(() => gw.metrics.readingsStored >= fleet.readingsSent, "readings stored");
  });

  afterAll(async () => {
    await fleet?.stop();
    await gw?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  type Tile = {
    unitId: string;
    state: string;
    reason: string;
    unacknowledgedAlarms: number;
    probes: { tempC: number }[];
  };

  it("answers the fleet overview in one call: sites with their zones, every unit's tile, worst first", async () => {
    const { status, body } = await get<{ sites: unknown[]; units: Tile[] & Record<string, unknown>[] }>(
      "/api/v1/console/fleet",
    );
    expect(status).toBe(200);
    expect(body.sites).toEqual([
      { siteId: `${prefix}-1`, name: "徐汇店", timeZone: "Asia/Shanghai" },
      expect.objectContaining({ siteId: `${prefix}-2`, name: `${prefix}-2` }),
    ]);
    expect(body.units).toHaveLength(4);
    expect(body.units[0]).toMatchObject({
      unitId: warm,
      siteId: `${prefix}-1`,
      kind: "fridge",
      state: "ok",
      reason: "in_range",
      range: { low: 2, high: 8 },
      agent: { agentId: `${prefix}-1-pi`, state: "online" },
      openAlarms: 0,
      probes: [
        {
          probeId: `${warm}-p1`,
          quality: "ok",
          fault: false,
          calibration: "unknown",
          observedAt: startAt + 89 * MIN,
        },
        {
          probeId: `${warm}-p2`,
          quality: "ok",
          fault: false,
          calibration: "unknown",
          observedAt: startAt + 89 * MIN,
        },
      ],
    });
    const one = await get<{ units: Tile[] }>(`/api/v1/console/fleet?siteId=${prefix}-2`);
    expect(one.body.units.map((u) => u.unitId)).toEqual([`${prefix}-2-u1`, `${prefix}-2-u2`]);
  });

  it("streams stored readings, then the alarm, excursion and tile of an excursion, live", async () => {
    const live = listen(url, token);
    try {
      await until(() => live.heard.some((h) => h.event === "hello"), "hello");
      await fleet.advanceTo(Date.now());
      await until(
        () =>
          live.heard.some((h) => h.event === "unit" && h.data.unitId === warm && h.data.state === "action"),
        "the warm fridge's tile turns action",
      );
      const readings = live.heard
        .filter((h) => h.event === "readings")
        .flatMap((h) => h.data.readings as { unitId: string; tempC: number; observedAt: number }[]);
      expect(readings.some((r) => r.unitId === warm && r.tempC === 14)).toBe(true);
      expect(
        live.heard.some((h) => h.event === "alarm" && h.data.unitId === warm && h.data.tier === "action"),
      ).toBe(true);
      expect(
        live.heard.some((h) => h.event === "excursion" && h.data.unitId === warm && h.data.endedAt === null),
      ).toBe(true);
      // One tile event per change a person would see, not one per reading.
      const warmTiles = live.heard.filter((h) => h.event === "unit" && h.data.unitId === warm);
      expect(warmTiles.length).toBeLessThanOrEqual(3);
    } finally {
      live.close();
    }
  });

  it("an acknowledgement through the alarms API arrives on the stream and in the inbox", async () => {
    const live = listen(url, token);
    try {
      await until(() => live.heard.some((h) => h.event === "hello"), "hello");
      const inbox = await get<{
        alarms: { alarmId: string; unitId: string; tier?: string; state: string }[];
      }>("/api/v1/console/inbox?hours=24");
      const action = inbox.body.alarms.find((a) => a.unitId === warm && a.tier === "action");
      expect(action?.state).toBe("raised");
      const res = await fetch(`${url}/api/v1/alarms/${action?.alarmId}/acknowledge`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ by: "qa.zhang", comment: "door left open", correctiveAction: "door closed" }),
      });
      expect(res.status).toBe(200);
      await until(
        () =>
          live.heard.some(
            (h) =>
              h.event === "alarm" && h.data.alarmId === action?.alarmId && h.data.state === "acknowledged",
          ),
        "alarm.acknowledged on the stream",
      );
      await until(
        () =>
          live.heard.some(
            (h) => h.event === "unit" && h.data.unitId === warm && h.data.unacknowledgedAlarms === 1,
          ),
        "the tile counts one unacknowledged alarm less",
      );
      const after = await get<{ alarms: { alarmId: string; acknowledged?: unknown }[] }>(
        "/api/v1/console/inbox",
      );
      expect(after.body.alarms.find((a) => a.alarmId === action?.alarmId)?.acknowledged).toEqual({
        by: "qa.zhang",
        comment: "door left open",
        correctiveAction: "door closed",
      });
    } finally {
      live.close();
    }
  });

  it("replays what a browser missed after a reconnect (Last-Event-ID), and says resync for what it cannot", async () => {
    const first = listen(url, token);
    await until(() => first.heard.some((h) => h.event === "hello"), "hello");
    const lastId = first.heard.at(-1)?.id as string;
    first.close();
    await fleet.advanceTo(Date.now() + MIN); // readings while the browser is away
    await until(() => gw.metrics.readingsStored >= fleet.readingsSent, "readings stored");
    const again = listen(url, token, lastId);
    try {
      await until(() => again.heard.some((h) => h.event === "readings"), "missed readings replayed");
      expect(again.heard[0]?.event).toBe("hello");
    } finally {
      again.close();
    }
    const stale = listen(url, token, "0000-1");
    try {
      await until(() => stale.heard.some((h) => h.event === "resync"), "resync");
    } finally {
      stale.close();
    }
  });

  it("an agent going offline turns its units' tiles offline", async () => {
    const live = listen(url, token);
    try {
      await until(() => live.heard.some((h) => h.event === "hello"), "hello");
      const agent = fleet.agents[1];
      await agent?.client?.publishAsync(
        `ct/v1/${agent.siteId}/agent/${agent.agentId}/state`,
        JSON.stringify({
          v: 1,
          agentId: agent.agentId,
          state: "offline",
          sessionId: agent.sessionId,
          at: Date.now(),
        }),
        { qos: 1, retain: true },
      );
      await until(
        () => live.heard.some((h) => h.event === "agent" && h.data.state === "offline"),
        "agent event",
      );
      await until(
        () =>
          live.heard.some(
            (h) => h.event === "unit" && h.data.unitId === `${prefix}-2-u1` && h.data.state === "offline",
          ),
        "tile offline",
      );
    } finally {
      live.close();
    }
  });

  it("one unit with the profile in force; 404 for an unknown one", async () => {
    const { status, body } = await get<Record<string, unknown>>(`/api/v1/console/units/${warm}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      site: { siteId: `${prefix}-1`, name: "徐汇店", timeZone: "Asia/Shanghai" },
      unit: { unitId: warm, state: "action" },
      profile: {
        source: "defaults",
        range: { low: 2, high: 8 },
        action: { high: 12 },
        delayMs: { action: 5 * MIN },
      },
      probes: [{ probeId: `${warm}-p1`, driver: "modbus-rtu", intervalMs: MIN }, { probeId: `${warm}-p2` }],
      lots: [],
    });
    expect((await get(`/api/v1/console/units/nope`)).status).toBe(404);
  });

  it("needs the API token (the stream too)", async () => {
    expect((await get("/api/v1/console/fleet", null)).status).toBe(401);
    const live = listen(url, undefined);
    try {
      await until(() => live.errors.length > 0, "refused");
      expect(live.errors[0]?.code).toBe(401);
    } finally {
      live.close();
    }
  });

  it("lists every console route with its schemas in /openapi.json", async () => {
    const { body } = await get<{
      paths: Record<string, { get: { tags: string[]; responses: Record<string, unknown> } }>;
    }>("/openapi.json", null);
    const paths = Object.keys(body.paths).filter((p) => p.startsWith("/api/v1/console/"));
    expect(paths.sort()).toEqual(
      [
        "/api/v1/console/fleet",
        "/api/v1/console/inbox",
        "/api/v1/console/live",
        "/api/v1/console/lot",
        "/api/v1/console/lots",
        "/api/v1/console/settings",
        "/api/v1/console/units/{unitId}",
      ].sort(),
    );
    const fleetSchema = JSON.stringify(body.paths["/api/v1/console/fleet"]?.get.responses);
    for (const field of ["unacknowledgedAlarms", "calibrationDueAt", "timeZone", "lastSeenAt"])
      expect(fleetSchema).toContain(field);
  });

  it("serves the console's pages without a token: index.html for any page, hashed assets, / redirects", async () => {
    const home = await get<string>("/console/", null);
    expect(home.status).toBe(200);
    expect(home.headers.get("content-type")).toContain("text/html");
    expect(home.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(home.body).toContain('<div id="app">');
    const page = await get<string>("/console/lots/L2026.04%2F12", null);
    expect(page.status).toBe(200);
    expect(page.body).toBe(home.body);
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(home.body)?.[1] as string;
    const asset = await get<string>(script, null);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("cache-control")).toContain("immutable");
    expect((await get("/console/assets/missing.js", null)).status).toBe(404);
    const root = await get("/", null);
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/console/");
    expect((await get("/console", null)).headers.get("location")).toBe("/console/");
  });
});

describe("console configuration and a missing build", () => {
  it("refuses an unknown time zone, naming where", () => {
    try {
      parseGatewayConfig({ console: { sites: { "store-1": { timeZone: "Mars/Olympus" } } } }, "gw.yaml");
      expect.unreachable();
    } catch (err) {
      expect(isColdtraceError(err, "CT_CFG_INVALID")).toBe(true);
      expect((err as Error).message).toContain("console.sites.store-1.timeZone: must be an IANA time zone");
    }
  });

  it("explains at /console/ how to build the console when its files are missing", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ct-console-nobuild-"));
    const empty = path.join(dir, "empty");
    await mkdir(empty);
    const { gw, url } = await gateway(dir, { assetsDir: empty });
    try {
      const res = await fetch(`${url}/console/units/x`);
      expect(res.status).toBe(503);
      expect(await res.text()).toContain("npm run build -w @coldtrace/console");
    } finally {
      await gw.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("serves a build from console.assetsDir", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ct-console-assets-"));
    await mkdir(path.join(dir, "site", "assets"), { recursive: true });
    await writeFile(path.join(dir, "site", "index.html"), "<!doctype html><p>mine</p>");
    const { gw, url } = await gateway(dir, { assetsDir: "site" });
    try {
      const res = await fetch(`${url}/console/inbox`);
      expect(await res.text()).toBe("<!doctype html><p>mine</p>");
    } finally {
      await gw.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
