/**
 * REST API with fastify inject() over real SQLite stores: authentication, validation messages
 * naming the field, readings (range and downsampled), alarm acknowledgement through the
 * engine, and the OpenAPI document.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../src/api/auth.ts";
import { buildApi } from "../../src/api/server.ts";
import { type OpenStorage, openStorage } from "../../src/app/storage.ts";
import type { DomainEvent } from "../../src/kernel/events.ts";

const T0 = 1_764_057_600_000;

describe("REST API", () => {
  let dir: string;
  let storage: OpenStorage;
  let app: FastifyInstance;
  const { token, hash } = generateToken();
  const auth = { authorization: `Bearer ${token}` };
  const acks: { alarmId: string; by: string }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-api-"));
    const file = path.join(dir, "ct.db");
    storage = await openStorage({
      records: { backend: "sqlite", path: file },
      readings: { backend: "sqlite" },
    });
    await storage.records.upsertUnit({ unitId: "fridge-1", siteId: "s1", kind: "fridge", name: "Reagents" });
    await storage.records.upsertProbe({
      probeId: "p1",
      unitId: "fridge-1",
      siteId: "s1",
      calibrationDueAt: null,
    });
    await storage.readings.append(
      Array.from({ length: 120 }, (_, i) => ({
        agentId: "pi-1",
        seq: i + 1,
        siteId: "s1",
        unitId: "fridge-1",
        probeId: "p1",
        observedAt: T0 + i * 30_000,
        receivedAt: T0 + i * 30_000,
        tempC: 4 + (i % 4),
        quality: "ok" as const,
        backfill: false,
      })),
    );
    await storage.records.upsertAlarm({
      alarmId: "alarm-1",
      siteId: "s1",
      unitId: "fridge-1",
      kind: "temperature",
      tier: "action",
      side: "high",
      raisedAt: T0,
      message: "fridge-1 above 8 °C",
      state: "raised",
      updatedAt: T0,
    });
    app = await buildApi({
      records: storage.records,
      readings: storage.readings,
      tokens: [{ name: "qa", hash }],
      metricsText: () => "coldtrace_ingest_readings_stored_total 0\n",
      async acknowledge(alarmId, ack): Promise<DomainEvent[]> {
        acks.push({ alarmId, by: ack.by });
        const a = await storage.records.getAlarm(alarmId);
        if (a)
          await storage.records.upsertAlarm({
            ...a,
            state: "acknowledged",
            acknowledged: ack,
            updatedAt: T0 + 1,
          });
        return [];
      },
    });
  });

  afterAll(async () => {
    await app?.close();
    await storage?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers 401 without a token or with a wrong one", async () => {
    const none = await app.inject({ method: "GET", url: "/api/v1/units" });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ message: "missing or unknown bearer token" });
    const wrong = await app.inject({
      method: "GET",
      url: "/api/v1/units",
      headers: { authorization: "Bearer nope" },
    });
    expect(wrong.statusCode).toBe(401);
  });

  it("lists units and probes", async () => {
    const units = await app.inject({ method: "GET", url: "/api/v1/units?siteId=s1", headers: auth });
    expect(units.statusCode).toBe(200);
    expect(units.json()).toEqual([{ unitId: "fridge-1", siteId: "s1", kind: "fridge", name: "Reagents" }]);
    const probes = await app.inject({ method: "GET", url: "/api/v1/probes?unitId=fridge-1", headers: auth });
    expect(probes.json()).toMatchObject([{ probeId: "p1", unitId: "fridge-1" }]);
    const missing = await app.inject({ method: "GET", url: "/api/v1/units/nope", headers: auth });
    expect(missing.statusCode).toBe(404);
  });

  it("names the field in 400 answers", async () => {
    const bad = await app.inject({
      method: "GET",
      url: "/api/v1/units/fridge-1/readings?from=abc&to=1",
      headers: auth,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain("query.from: expected integer");
    const missing = await app.inject({
      method: "GET",
      url: "/api/v1/units/fridge-1/readings?from=1",
      headers: auth,
    });
    expect(missing.json().message).toContain("query.to: required");
    const reversed = await app.inject({
      method: "GET",
      url: `/api/v1/units/fridge-1/readings?from=${T0}&to=${T0}`,
      headers: auth,
    });
    expect(reversed.statusCode).toBe(400);
    expect(reversed.json().message).toBe("query.to: must be after query.from");
    const body = await app.inject({
      method: "POST",
      url: "/api/v1/alarms/alarm-1/acknowledge",
      headers: auth,
      payload: { by: "qa.zhang", comment: 3 },
    });
    expect(body.statusCode).toBe(400);
    expect(body.json().message).toContain("body.correctiveAction: required");
  });

  it("returns a range of readings and a downsampled series", async () => {
    const raw = await app.inject({
      method: "GET",
      url: `/api/v1/units/fridge-1/readings?from=${T0}&to=${T0 + 10 * 30_000}`,
      headers: auth,
    });
    expect(raw.statusCode).toBe(200);
    expect(raw.json().readings.map((r: { seq: number }) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const ds = await app.inject({
      method: "GET",
      url: `/api/v1/units/fridge-1/readings?from=${T0}&to=${T0 + 120 * 30_000}&bucketMs=600000`,
      headers: auth,
    });
    const buckets = ds.json().buckets as { count: number; min: number; max: number }[];
    expect(buckets).toHaveLength(6);
    expect(buckets[0]).toMatchObject({ count: 20, min: 4, max: 7 });
  });

  it("acknowledges an alarm through the engine", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/api/v1/alarms/alarm-1/acknowledge",
      headers: auth,
      payload: { by: "qa.zhang", comment: "door open", correctiveAction: "closed" },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      alarmId: "alarm-1",
      state: "acknowledged",
      acknowledged: { by: "qa.zhang" },
    });
    expect(acks).toEqual([{ alarmId: "alarm-1", by: "qa.zhang" }]);
    const unknown = await app.inject({
      method: "POST",
      url: "/api/v1/alarms/alarm-9/acknowledge",
      headers: auth,
      payload: { by: "x", comment: "", correctiveAction: "" },
    });
    expect(unknown.statusCode).toBe(404);
    const list = await app.inject({ method: "GET", url: "/api/v1/alarms?state=acknowledged", headers: auth });
    expect(list.json()).toHaveLength(1);
  });

  it("serves a valid OpenAPI document with the paths, and metrics without a token", async () => {
    const res = await app.inject({ method: "GET", url: "/openapi.json" });
    expect(res.statusCode).toBe(200);
    const doc = JSON.parse(res.body) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/api/v1/units",
        "/api/v1/units/{unitId}/readings",
        "/api/v1/alarms/{alarmId}/acknowledge",
        "/api/v1/excursions/{excursionId}",
        "/api/v1/agents",
      ]),
    );
    const metrics = await app.inject({ method: "GET", url: "/metrics" });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers["content-type"]).toContain("text/plain");
  });

  it("serves the human-readable API page from the package, no CDN, from the same document", async () => {
    const page = await app.inject({ method: "GET", url: "/docs/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toContain("text/html");
    // Every script and stylesheet is served by the gateway itself.
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.length).toBeGreaterThan(0);
    for (const a of assets) expect(a, a).not.toMatch(/^(https?:)?\/\//);
    const bundle = assets.find((a) => a.endsWith("swagger-ui-bundle.js")) as string;
    const js = await app.inject({ method: "GET", url: new URL(bundle, "http://x/docs/").pathname });
    expect(js.statusCode).toBe(200);
    expect(js.body.length).toBeGreaterThan(100_000);
    const spec = await app.inject({ method: "GET", url: "/docs/json" });
    const doc = await app.inject({ method: "GET", url: "/openapi.json" });
    expect(spec.json()).toEqual(doc.json());
    // The page's own routes are not API routes.
    expect(Object.keys(doc.json().paths).filter((p) => p.startsWith("/docs"))).toEqual([]);
  });
});
