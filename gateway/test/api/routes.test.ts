/**
 * Every route is schema-first: the test walks the routes a gateway with every built-in module
 * registers (core API and the modules' routes), and fails on any without request and response
 * schemas, or missing from /openapi.json. Errors have one shape on every route, with the
 * status the error registry gives the code.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { errorCodes, errorHttpStatus, httpStatusOf } from "@coldtrace/protocol";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../src/api/auth.ts";
import { apiRoutes } from "../../src/api/server.ts";
import { type GatewayRuntime, startGateway } from "../../src/app/gateway.ts";
import { CredentialStore } from "../../src/broker/credentials.ts";
import { builtinExtensions } from "../../src/cli/builtins.ts";
import { parseGatewayConfig } from "../../src/config/load.ts";

describe("REST routes", () => {
  let dir: string;
  let gw: GatewayRuntime;
  const { token, hash } = generateToken();
  const auth = { authorization: `Bearer ${token}` };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-routes-"));
    const config = parseGatewayConfig(
      {
        broker: { host: "127.0.0.1", port: 0 },
        api: { host: "127.0.0.1", port: 0, tokens: [{ name: "t", hash }] },
        storage: { records: { backend: "sqlite", path: "ct.db" }, readings: { backend: "sqlite" } },
      },
      "routes",
      dir,
    );
    gw = await startGateway({
      config,
      log: pino({ level: "silent" }),
      credentials: new CredentialStore(),
      extensions: builtinExtensions(config),
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("every route declares request and response schemas and is in /openapi.json", async () => {
    const app = gw.api;
    if (!app) throw new Error("no api");
    const doc = (await app.inject({ method: "GET", url: "/openapi.json" })).json() as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = apiRoutes(app).filter(
      (r) => r.method !== "HEAD" && !(r.schema as { hide?: boolean } | undefined)?.hide,
    );
    expect(routes.length).toBeGreaterThan(20);
    const missing: string[] = [];
    for (const r of routes) {
      const where = `${r.method} ${r.url}`;
      const s = (r.schema ?? {}) as Record<string, unknown>;
      const response = (s.response ?? {}) as Record<string, unknown>;
      if (!Object.keys(response).some((k) => /^2\d\d$/.test(k)))
        missing.push(`${where}: no 2xx response schema`);
      if (!response["4xx"]) missing.push(`${where}: no 4xx (error) response schema`);
      if (!s.querystring) missing.push(`${where}: no querystring schema`);
      if (r.url.includes(":") && !s.params) missing.push(`${where}: no params schema`);
      if ((r.method === "POST" || r.method === "PUT") && !s.body) missing.push(`${where}: no body schema`);
      const openapiPath = r.url.replace(/:([A-Za-z]+)/g, "{$1}");
      if (!doc.paths[openapiPath]?.[r.method.toLowerCase()]) missing.push(`${where}: not in /openapi.json`);
    }
    expect(missing).toEqual([]);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/api/v1/lots/eligibility", "/api/v1/lots/holds"]),
    );
  });

  it("answers errors in one shape, with the registry's status, on core and module routes", async () => {
    const app = gw.api;
    if (!app) throw new Error("no api");
    const shape = {
      statusCode: expect.any(Number),
      code: expect.stringMatching(/^CT_[A-Z_]+$/),
      error: expect.any(String),
      message: expect.any(String),
      issues: expect.any(Array),
    };
    const cases = [
      { url: "/api/v1/units", headers: {}, code: "CT_API_UNAUTHORIZED" },
      { url: "/api/v1/units/fridge-9", headers: auth, code: "CT_API_NOT_FOUND" },
      { url: "/api/v1/nope", headers: auth, code: "CT_API_NOT_FOUND" },
      { url: "/api/v1/units/fridge-1/readings?from=abc&to=1", headers: auth, code: "CT_API_BAD_REQUEST" },
      { url: "/api/v1/lots/eligibility", headers: auth, code: "CT_LOT_INVALID" },
      { url: "/api/v1/lots/lots/NOPE", headers: auth, code: "CT_API_NOT_FOUND" },
    ] as const;
    for (const c of cases) {
      const res = await app.inject({ method: "GET", url: c.url, headers: c.headers });
      expect(res.json(), c.url).toEqual({ ...shape, code: c.code, statusCode: httpStatusOf(c.code) });
      expect(res.statusCode, c.url).toBe(httpStatusOf(c.code));
    }
    const bad = await app.inject({
      method: "GET",
      url: "/api/v1/units/fridge-1/readings?from=abc&to=1",
      headers: auth,
    });
    expect(bad.json().issues).toEqual([{ path: "query.from", message: "expected integer" }]);
  });

  it("every status in the error registry is a client or server error", () => {
    for (const [code, status] of Object.entries(errorHttpStatus)) {
      expect(code in errorCodes, code).toBe(true);
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
    }
  });
});
