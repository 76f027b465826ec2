/** The gateway's YAML configuration: defaults, and every problem named by file and path. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadGatewayConfig, parseGatewayConfig } from "../../src/config/load.ts";

describe("gateway configuration", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-cfg-"));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it("starts from sane defaults: embedded broker on 1883, SQLite, API on 8080", () => {
    const cfg = parseGatewayConfig({}, "defaults", "/srv/ct");
    expect(cfg.broker).toMatchObject({
      mode: "embedded",
      port: 1883,
      credentialsFile: "/srv/ct/data/credentials.json",
    });
    expect(cfg.storage).toEqual({
      records: { backend: "sqlite", path: "/srv/ct/data/coldtrace.db" },
      readings: { backend: "sqlite" },
    });
    expect(cfg.api.port).toBe(8080);
    expect(Object.isFrozen(cfg.broker)).toBe(true);
  });

  it("keeps SQLite's :memory: as it is: it names no file to resolve", () => {
    const cfg = parseGatewayConfig(
      { storage: { records: { backend: "sqlite", path: ":memory:" }, readings: { backend: "sqlite" } } },
      "inline",
      "/srv/ct",
    );
    expect(cfg.storage.records).toEqual({ backend: "sqlite", path: ":memory:" });
  });

  it("lists every problem with the file and the path", async () => {
    const file = path.join(dir, "bad.yaml");
    await writeFile(
      file,
      "broker:\n  mode: external\n  port: 99999\nstorage:\n  records: { backend: sqlite }\n  readings: { backend: postgres }\n",
    );
    let caught: unknown;
    try {
      loadGatewayConfig(file);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: "CT_CFG_INVALID" });
    const message = (caught as Error).message;
    expect(message).toContain("broker.port");
    expect(message).toContain("broker.url: required when mode is external");
    expect(message).toContain('storage.readings.backend: must be "sqlite"');
    expect(message).toContain(file);
  });

  it("says when the file cannot be read or parsed", async () => {
    expect(() => loadGatewayConfig(path.join(dir, "missing.yaml"))).toThrow(
      expect.objectContaining({ code: "CT_CFG_UNREADABLE" }),
    );
    const file = path.join(dir, "broken.yaml");
    await writeFile(file, "broker: [unclosed\n");
    expect(() => loadGatewayConfig(file)).toThrow(expect.objectContaining({ code: "CT_CFG_UNREADABLE" }));
    // Two mistakes, both named with their line, not just the first.
    const twice = path.join(dir, "twice.yaml");
    await writeFile(twice, "api:\n  port: 8080\n  port: 8081\nbroker:\n\tport: 1883\n");
    let caught: { code?: string; context?: { issues?: unknown[] }; message?: string } = {};
    try {
      loadGatewayConfig(twice);
    } catch (err) {
      caught = err as typeof caught;
    }
    expect(caught.code).toBe("CT_CFG_UNREADABLE");
    expect(caught.context?.issues?.length).toBeGreaterThanOrEqual(2);
    expect(caught.message).toContain(twice);
  });
});
