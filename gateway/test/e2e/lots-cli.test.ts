/**
 * The lots module through the real CLI process: `coldtrace-gateway check` refuses a bad
 * `lots.policy` naming the file and the field; `credentials add` + `run` start a gateway whose
 * REST API takes products, lots and movements, and whose expiry sweep flips the retained
 * eligibility of a lot that expires while in stock; SIGTERM stops it cleanly.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { decodeMessage, type Eligibility, encodePayload, formatTopic } from "@coldtrace/protocol";
import { freePort } from "@coldtrace/testkit";
import { connectAsync } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../src/api/auth.ts";
import { until } from "../ingest/harness.ts";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += String(d);
    });
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("coldtrace-gateway with the lots module", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-lots-cli-"));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it("check: a bad lots.policy is refused with the file and the path (exit 2)", async () => {
    const file = path.join(dir, "bad.yaml");
    await writeFile(file, "lots:\n  policy:\n    quarantineOnActionExcursion: yes please\n    nonsense: 1\n");
    const r = await cli(["check", "--config", file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: configuration is not valid (CT_CFG_INVALID)`);
    expect(r.stderr).toContain('lots.policy.quarantineOnActionExcursion: expected boolean, got "yes please"');
    expect(r.stderr).toContain('lots.policy: Unrecognized key: "nonsense"');
    const ok = path.join(dir, "ok.yaml");
    await writeFile(ok, "lots:\n  enabled: false\n");
    expect(await cli(["check", "--config", ok])).toMatchObject({
      code: 0,
      stdout: expect.stringContaining("lots off"),
    });
  });

  it("run: REST master data and movement, expiry sweep publishes the lot ineligible, SIGTERM stops", async () => {
    const [mqttPort, apiPort] = [await freePort(), await freePort()];
    const { token, hash } = generateToken();
    const file = path.join(dir, "gateway.yaml");
    await writeFile(
      file,
      [
        "gatewayId: gw-cli",
        "log: { level: info }",
        `broker: { host: 127.0.0.1, port: ${mqttPort}, credentialsFile: ./credentials.json }`,
        "storage: { records: { backend: sqlite, path: ./ct.db }, readings: { backend: sqlite } }",
        `api: { host: 127.0.0.1, port: ${apiPort}, tokens: [{ name: demo, hash: "${hash}" }] }`,
        "lots:",
        "  expirySweepMs: 1000",
        "  policy: { quarantineOnAlertExcursion: true }",
        "",
      ].join("\n"),
    );
    const add = await cli([
      ...["credentials", "add", "--service", "planner", "--role", "planner", "--site", "store-12"],
      ...["--secret", "planner-secret", "--config", file],
    ]);
    expect(add.code).toBe(0);
    // The agent of the store's fridge, so the gateway knows the unit movements name (#14).
    const agentAdd = await cli([
      ...["credentials", "add", "--agent", "pi-store-12", "--site", "store-12"],
      ...["--secret", "agent-secret", "--config", file],
    ]);
    expect(agentAdd.code).toBe(0);

    const child: ChildProcess = spawn(process.execPath, [MAIN, "run", "--config", file], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const lines: Record<string, unknown>[] = [];
    let buf = "";
    child.stdout?.on("data", (d) => {
      buf += String(d);
      const parts = buf.split("\n");
      buf = parts.pop() ?? "";
      for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Record<string, unknown>);
    });
    try {
      await until(() => lines.some((l) => l.msg === "gateway started"), "gateway started");
      expect(lines.find((l) => l.msg === "gateway started")).toMatchObject({ lots: true });
      expect(lines.find((l) => l.msg === "lots module started")).toMatchObject({
        backend: "sqlite",
        policy: { quarantineOnAlertExcursion: true, quarantineOnActionExcursion: true },
      });

      const agent = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
        clientId: "pi-store-12",
        username: "pi-store-12",
        password: "agent-secret",
        reconnectPeriod: 0,
      });
      await agent.publishAsync(
        formatTopic({ kind: "birth", siteId: "store-12", agentId: "pi-store-12" }),
        encodePayload("birth", {
          v: 1,
          agentId: "pi-store-12",
          siteId: "store-12",
          sessionId: "s1",
          agentVersion: "1",
          configHash: "d".repeat(64),
          startedAt: Date.now(),
          nextSeq: 1,
          units: [{ unitId: "fridge-2", kind: "fridge", probeIds: ["fridge-2-p1"] }],
          probes: [{ probeId: "fridge-2-p1", unitId: "fridge-2", driver: "modbus-tcp", intervalMs: 60_000 }],
        }),
        { qos: 1, retain: true },
      );
      await agent.endAsync();

      const api = `http://127.0.0.1:${apiPort}/api/v1`;
      const send = async (method: string, p: string, body: unknown) => {
        const res = await fetch(`${api}${p}`, {
          method,
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as unknown };
      };
      const expiresAt = Date.now() + 2000;
      expect(
        await send("PUT", "/lots/products", {
          sku: "REAG-CRP-100",
          name: "CRP reagent kit",
          storageClass: "2-8C",
          budgetMinutes: { high: 60, low: 0 },
        }),
      ).toMatchObject({ status: 200, body: { sku: "REAG-CRP-100", lowC: 2, highC: 8 } });
      expect(
        await send("PUT", "/lots/lots", { lotId: "L2026/0412", sku: "REAG-CRP-100", expiresAt }),
      ).toMatchObject({ status: 200, body: { lotId: "L2026/0412", expiresAt } });
      const movement = {
        v: 1,
        movementId: "erp-DN-1-1",
        kind: "receive",
        siteId: "store-12",
        occurredAt: Date.now() - 60_000,
        lotId: "L2026/0412",
        sku: "REAG-CRP-100",
        quantity: 4,
        toUnitId: "fridge-2",
        reference: "DN-1",
      };
      expect(await send("POST", "/lots/movements", movement)).toMatchObject({
        status: 201,
        body: { duplicate: false },
      });
      expect(await send("POST", "/lots/movements", movement)).toMatchObject({
        status: 200,
        body: { duplicate: true },
      });
      expect(await send("POST", "/lots/movements", { ...movement, quantity: 0 })).toMatchObject({
        status: 400,
        body: { code: "CT_WIRE_INVALID" },
      });
      // #14: the same movementId with other content is a conflict, not a duplicate.
      expect(await send("POST", "/lots/movements", { ...movement, quantity: 5 })).toMatchObject({
        status: 409,
        body: { code: "CT_LOT_CONFLICT", issues: [{ path: "movementId" }] },
      });

      // The planner (account made by the CLI) sees the retained state flip at expiry.
      const planner = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
        clientId: "planner-cli",
        username: "planner",
        password: "planner-secret",
        reconnectPeriod: 0,
      });
      const states: Eligibility[] = [];
      planner.on("message", (topic, payload) => {
        const m = decodeMessage(topic, payload);
        if (m.kind === "eligibility") states.push(m.payload);
      });
      await planner.subscribeAsync(
        formatTopic({ kind: "eligibility", siteId: "store-12", lotId: "L2026/0412" }),
        {
          qos: 1,
        },
      );
      await until(() => states.at(-1)?.eligible === true, "eligible while in date");
      expect(states.at(-1)).toMatchObject({ transferableQuantity: 4, status: "available" });
      await until(() => states.at(-1)?.eligible === false, "ineligible after expiry", 10_000);
      expect(states.at(-1)?.reasons.join(" ")).toContain("expired at");
      await planner.endAsync();
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  });
});
