/**
 * Fleet configuration end to end: the running gateway (embedded broker with device
 * credentials and ACLs, SQLite, its transactional outbox) and the real agent process, which
 * logs in with a password it reads from a file on its box. Through the REST API the gateway
 * sends a desired configuration; the agent applies it, and the gateway shows the agent in step
 * with it. A configuration carrying a secret is refused by the API; one that loses the broker
 * is rolled back by the agent, and the gateway shows that too.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: JSON bodies and free-form configuration documents
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { startTcpSlave, type TcpSlaveSim } from "@coldtrace/simulators";
import { freePort } from "@coldtrace/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type Harness, startHarness, until } from "../ingest/harness.ts";

const TOKEN = "fleet-test-token";
/** The agent's CLI, run as on a box (`coldtrace-agent run`); a path, not an import. */
const AGENT_MAIN = new URL("../../../edge-agent/src/cli/main.ts", import.meta.url).pathname;
const AGENT = "pi-fleet";
const SITE = "store-f";

describe("fleet configuration through the gateway", () => {
  let h: Harness;
  let sim: TcpSlaveSim;
  let agent: ChildProcess | undefined;
  let agentStderr = "";
  let api: string;
  let base: Record<string, any>;

  const call = async (method: string, url: string, body?: unknown) => {
    const res = await fetch(`${api}/api/v1${url}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const view = async () =>
    (await call("GET", "/agents/config")).body.agents.find((a: any) => a.agentId === AGENT);

  beforeAll(async () => {
    sim = await startTcpSlave({
      slaves: [{ id: 1, channels: [0, 1].map((r) => ({ register: r, baseC: 4, noiseC: 0 })) }],
    });
    h = await startHarness({
      agents: [[AGENT, SITE]],
      config: {
        api: {
          host: "127.0.0.1",
          port: 0,
          tokens: [{ name: "ops", hash: `sha256:${createHash("sha256").update(TOKEN).digest("hex")}` }],
        },
      },
    });
    api = h.gw.apiUrl as string;
    // The agent's secret is provisioned on its box as a file; configurations only name it.
    const passwordFile = path.join(h.dir, "broker.pass");
    writeFileSync(passwordFile, `${h.secrets[AGENT]}\n`, { mode: 0o640 });
    base = {
      agent: { id: AGENT, siteId: SITE, dataDir: path.join(h.dir, "agent"), remoteConfig: { graceMs: 3000 } },
      mqtt: {
        url: h.gw.brokerUrl,
        username: AGENT,
        passwordFile,
        reconnect: { minMs: 50, maxMs: 200 },
        batch: { delayMs: 10 },
      },
      units: [{ id: "fridge-f", kind: "fridge" }],
      buses: [
        {
          id: "tcp-1",
          type: "modbus-tcp",
          host: "127.0.0.1",
          port: sim.port,
          probes: [
            { id: "fridge-f-p0", unit: "fridge-f", slaveId: 1, register: 0, scale: 0.1, intervalMs: 200 },
          ],
        },
      ],
    };
    const file = path.join(h.dir, "agent.yaml");
    writeFileSync(file, stringify(base));
    agent = spawn(process.execPath, [AGENT_MAIN, "run", "--config", file], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    agent.stderr?.on("data", (d) => {
      agentStderr += String(d);
    });
    await until(async () => (await view())?.status === "not_managed", "the agent's first report", 20_000);
  });

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((r) => agent?.once("exit", r));
      agent.kill("SIGTERM");
      await exited;
    }
    expect(agentStderr).toBe("");
    await h?.close();
    await sim?.close();
  });

  it("sends a desired configuration and shows the agent in step with it", async () => {
    const pushed = structuredClone(base);
    pushed.buses[0].probes.push({
      id: "fridge-f-p1",
      unit: "fridge-f",
      slaveId: 1,
      register: 1,
      scale: 0.1,
      intervalMs: 200,
    });
    const sent = await call("PUT", `/agents/${AGENT}/config`, { config: pushed });
    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({
      agentId: AGENT,
      version: 1,
      topic: `ct/v1/${SITE}/agent/${AGENT}/config/desired`,
    });
    await until(async () => (await view())?.status === "in_sync", "the agent in step", 20_000);
    const v = await view();
    expect(v).toMatchObject({
      siteId: SITE,
      inSync: true,
      desired: { version: 1, documentHash: sent.body.documentHash, issuedBy: "ops" },
      reported: { state: "applied", desiredVersion: 1, running: { source: "remote", version: 1 } },
    });
    const detail = await call("GET", `/agents/${AGENT}/config`);
    expect(detail.body.document.buses[0].probes).toHaveLength(2);
    // The birth the gateway stored carries the version too.
    await until(async () => {
      const a = (await h.gw.storage.records.listAgents(SITE)).find((x) => x.agentId === AGENT);
      return (a?.birth as { configVersion?: number } | null)?.configVersion === 1;
    }, "a birth with configVersion 1");
  });

  it("refuses a configuration that carries a secret or names another agent, with every field", async () => {
    const bad = structuredClone(base);
    bad.mqtt.password = "in-clear";
    delete bad.mqtt.passwordFile;
    bad.agent.id = "pi-other";
    const r = await call("PUT", `/agents/${AGENT}/config`, { config: bad });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe("CT_WIRE_INVALID");
    expect(r.body.issues.map((i: { path: string }) => i.path)).toEqual(["config.agent.id"]);
    delete bad.agent.id;
    bad.agent.id = AGENT;
    const s = await call("PUT", `/agents/${AGENT}/config`, { config: bad });
    expect(s.status).toBe(400);
    expect(s.body.issues.map((i: { path: string }) => i.path)).toEqual(["config.mqtt.password"]);
    expect((await call("PUT", `/agents/${AGENT}/config`, { config: { agent: {} } })).status).toBe(400);
    expect((await view())?.desired.version).toBe(1);
  });

  it("shows a configuration the agent rolled back by itself", async () => {
    const lost = structuredClone(base);
    lost.mqtt.url = `mqtt://127.0.0.1:${await freePort()}`;
    const sent = await call("PUT", `/agents/${AGENT}/config`, { config: lost, graceMs: 2000 });
    expect(sent.body.version).toBe(2);
    await until(async () => (await view())?.status === "rolled_back", "the rollback", 30_000);
    const v = await view();
    expect(v.inSync).toBe(false);
    expect(v.reported).toMatchObject({
      state: "rolled_back",
      desiredVersion: 2,
      running: { version: 1 },
      reason: { code: "CT_CONFIG_ROLLBACK" },
    });
    const metrics = await (await fetch(`${api}/metrics`)).text();
    expect(metrics).toMatch(/^coldtrace_fleet_agents\{config="rolled_back"\} 1$/m);
  });
});
