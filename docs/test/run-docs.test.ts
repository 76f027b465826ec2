/**
 * Runs what README.md and docs/ tell readers to run (the ```sh run blocks, docs/runnable.md)
 * against a real gateway started here, and checks that each prints what the docs say.
 *
 * The gateway: embedded broker and REST API on free ports, SQLite, the lots module, its clock
 * set to 2025-11-25 11:01 UTC (the docs' example day). Before the docs run, the store of the
 * examples is set up as the docs describe it: store-12 with fridge-2 (agent pi-fridge-3, two
 * probes), product REAG-CRP-100, lots L2026/0412 (10) and L2026/0519 (6) received into the
 * fridge the day before; from 09:00 the fridge warms to 13.5 °C, so an action-level excursion
 * is open, its alarms are raised and both lots are quarantined. The blocks get:
 *
 *   COLDTRACE_API    the gateway's API, http://127.0.0.1:<port>
 *   TOKEN            an API token
 *   COLDTRACE_MQTT   the gateway's broker, mqtt://127.0.0.1:<port>
 *   PLANNER_SECRET   the MQTT password of the `planner` account
 *
 * Blocks of a file run in order (an acknowledgement changes what a later block sees); files
 * run in alphabetical order, README.md first.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  builtinExtensions,
  CredentialStore,
  type GatewayRuntime,
  generateToken,
  openStorage,
  parseGatewayConfig,
  startGateway,
} from "@coldtrace/gateway";
import { encodePayload, formatTopic } from "@coldtrace/protocol";
import { connectAsync, type MqttClient } from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fences, outputMismatches, type RunnableBlock, runnableBlocks } from "./runnable.ts";

const root = path.resolve(import.meta.dirname, "../..");
const pages = [
  "README.md",
  ...readdirSync(path.join(root, "docs"), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".md"))
    .map((f) => path.join("docs", f))
    .sort(),
];
const blocks: RunnableBlock[] = pages.flatMap((p) =>
  runnableBlocks(p, readFileSync(path.join(root, p), "utf8")),
);

/** 2025-11-25T08:00:00Z, the docs' example day. */
const T0 = Date.UTC(2025, 10, 25, 8, 0, 0);
const MIN = 60_000;
const site = "store-12";
const unitId = "fridge-2";
const agentId = "pi-fridge-3";

describe("the docs mark what readers run", () => {
  it("every shell example with curl or a coldtrace command against a gateway is run by this test", () => {
    const unmarked: string[] = [];
    for (const p of pages) {
      for (const f of fences(readFileSync(path.join(root, p), "utf8"))) {
        const [lang, mark] = f.info.split(/\s+/);
        if ((lang === "sh" || lang === "bash") && mark !== "run" && /\bcurl\b/.test(f.text))
          unmarked.push(`${p}:${f.line}`);
      }
    }
    expect(unmarked, "mark them ```sh run (docs/runnable.md)").toEqual([]);
  });

  it("the integrator pages are runnable", () => {
    const count = (file: string) => blocks.filter((b) => b.file === file).length;
    expect(count("docs/integrator/api.md")).toBeGreaterThanOrEqual(10);
    expect(count("docs/integrator/planner.md")).toBeGreaterThanOrEqual(4);
    expect(count("README.md")).toBeGreaterThanOrEqual(1);
  });
});

describe("the docs, run against a real gateway", () => {
  let dir: string;
  let gw: GatewayRuntime;
  let env: NodeJS.ProcessEnv;
  const clients: MqttClient[] = [];
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-docs-"));
    const credentials = new CredentialStore();
    const agentSecret = (
      await credentials.add({ username: agentId, role: "agent", siteIds: [site], agentId })
    ).secret;
    const plannerSecret = (await credentials.add({ username: "planner", role: "planner", siteIds: ["*"] }))
      .secret;
    const { token, hash } = generateToken();
    const config = parseGatewayConfig(
      {
        gatewayId: "gw-1",
        log: { level: "silent" },
        broker: { host: "127.0.0.1", port: 0 },
        api: { host: "127.0.0.1", port: 0, tokens: [{ name: "docs", hash }] },
        storage: { records: { backend: "sqlite", path: "coldtrace.db" }, readings: { backend: "sqlite" } },
      },
      "docs test",
      dir,
    );
    // The gateway's clock: the example day, 11:01 UTC, running on from there.
    const started = Date.now();
    const now = () => T0 + 3 * 60 * MIN + MIN + (Date.now() - started);
    gw = await startGateway({
      config,
      log: pino({ level: "silent" }),
      storage: await openStorage(config.storage),
      credentials,
      clock: { now },
      extensions: builtinExtensions(config),
    });
    const api = gw.apiUrl as string;
    const call = async (method: string, p: string, body: unknown) => {
      const res = await fetch(`${api}/api/v1${p}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
    };
    await call("PUT", "/lots/products", {
      sku: "REAG-CRP-100",
      name: "CRP reagent kit",
      storageClass: "2-8C",
      budgetMinutes: { high: 60, low: 30 },
    });
    const agent = await connectAsync(gw.brokerUrl, {
      clientId: agentId,
      username: agentId,
      password: agentSecret,
      reconnectPeriod: 0,
    });
    clients.push(agent);
    const probes = [`${unitId}-top`, `${unitId}-bottom`];
    await agent.publishAsync(
      formatTopic({ kind: "birth", siteId: site, agentId }),
      encodePayload("birth", {
        v: 1,
        agentId,
        siteId: site,
        sessionId: "s-7f3a",
        agentVersion: "0.1.0",
        configHash: "a".repeat(64),
        startedAt: T0 - 60 * MIN,
        nextSeq: 1,
        units: [{ unitId, kind: "fridge", name: "Reagent fridge 2", probeIds: probes }],
        probes: probes.map((probeId) => ({
          probeId,
          unitId,
          driver: "modbus-rtu" as const,
          intervalMs: 60_000,
          calibrationDueAt: Date.UTC(2026, 2, 1),
        })),
      }),
      { qos: 1 },
    );
    // Movements name units an agent has announced (#14): receive once the fridge is known.
    while (gw.units.get(unitId) === undefined) await new Promise((r) => setTimeout(r, 20));
    for (const [lotId, quantity, n] of [
      ["L2026/0412", 10, 1],
      ["L2026/0519", 6, 2],
    ] as const) {
      await call("PUT", "/lots/lots", { lotId, sku: "REAG-CRP-100", expiresAt: Date.UTC(2026, 5, 30) });
      await call("POST", "/lots/movements", {
        v: 1,
        movementId: `erp-88120-${n}`,
        kind: "receive",
        siteId: site,
        occurredAt: T0 - 24 * 60 * MIN,
        lotId,
        sku: "REAG-CRP-100",
        quantity,
        toUnitId: unitId,
        reference: "PO-4411",
      });
    }

    // 08:00–10:00 every minute: 5 °C, then from 09:00 the compressor has failed (13.5 °C).
    let seq = 0;
    for (let batch = 0; batch < 121; batch += 30) {
      const readings = [];
      for (let m = batch; m < Math.min(batch + 30, 121); m++)
        for (const probeId of probes)
          readings.push({
            seq: ++seq,
            probeId,
            observedAt: T0 + m * MIN,
            tempC: m >= 60 ? 13.5 : 5,
            quality: "ok" as const,
          });
      await agent.publishAsync(
        formatTopic({ kind: "telemetry", siteId: site, agentId, unitId }),
        encodePayload("telemetry", {
          v: 1,
          agentId,
          unitId,
          sessionId: "s-7f3a",
          sentAt: T0 + batch * MIN,
          readings,
        }),
        { qos: 1 },
      );
    }
    // Ready when the planner would see both lots held.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const res = await fetch(`${api}/api/v1/lots/eligibility?siteId=${site}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const states = (await res.json()) as { status: string }[];
      if (states.length === 2 && states.every((s) => s.status === "quarantined")) break;
      if (Date.now() > deadline) throw new Error(`lots not quarantined: ${JSON.stringify(states)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    env = {
      ...process.env,
      COLDTRACE_API: api,
      TOKEN: token,
      COLDTRACE_MQTT: gw.brokerUrl,
      PLANNER_SECRET: plannerSecret,
      PATH: `${path.join(root, "node_modules/.bin")}:${path.dirname(process.execPath)}:${process.env.PATH}`,
    };
  }, 60_000);

  afterAll(async () => {
    for (const c of children) if (c.pid) process.kill(-c.pid, "SIGKILL");
    for (const c of clients) c.end(true);
    await gw?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function run(block: RunnableBlock): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      // Its own process group, so that stopping it stops what it started (npx, node) too.
      const child = spawn("bash", ["-c", `set -euo pipefail\n${block.code}`], {
        cwd: root,
        env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      children.add(child);
      let stdout = "";
      let stderr = "";
      let stopped = false;
      const stop = (signal: NodeJS.Signals) => {
        try {
          if (child.pid) process.kill(-child.pid, signal);
        } catch {
          // already gone
        }
      };
      const timer = setTimeout(() => {
        stop("SIGKILL");
        reject(new Error(`${block.file}:${block.line}: still running after 60 s\n${stdout}\n${stderr}`));
      }, 60_000);
      child.stdout.on("data", (b: Buffer) => {
        stdout += b.toString();
        // A background block is done once it has printed what the docs say.
        if (block.background && block.output && outputMismatches(block.output, stdout, false).length === 0) {
          stopped = true;
          stop("SIGTERM");
        }
      });
      child.stderr.on("data", (b: Buffer) => {
        stderr += b.toString();
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        children.delete(child);
        resolve({ code: stopped && signal === "SIGTERM" ? 0 : code, stdout, stderr });
      });
    });
  }

  it.each(blocks.map((b) => [`${b.file}:${b.line} ${b.code.split("\n")[0]}`, b] as const))(
    "%s",
    async (_name, block) => {
      const r = await run(block);
      if (process.env.DOCS_PRINT)
        console.log(`=== ${block.file}:${block.line}\n${r.stdout}\n--- stderr\n${r.stderr}`);
      const where = `${block.file}:${block.line}`;
      expect(r.code, `${where} exit status\n${r.stdout}\n${r.stderr}`).toBe(block.exit);
      if (block.output) {
        expect(
          outputMismatches(block.output, r.stdout, !block.background),
          `${where} prints what ${block.file}:${block.output.line} says\n${r.stdout}`,
        ).toEqual([]);
      }
    },
    90_000,
  );
});
