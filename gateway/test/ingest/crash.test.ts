/**
 * PUBACK after commit, proven with a crash: a gateway process (`coldtrace-gateway run`) on
 * Mosquitto with a persistent session is killed with SIGKILL while an agent publishes, the agent
 * keeps publishing while it is down, and the restarted gateway must hold every reading the
 * agent got a PUBACK for, exactly once.
 *
 * Why Mosquitto: the broker must outlive the gateway, so that what the gateway did not
 * acknowledge is redelivered to its session. The embedded broker dies with the gateway; there
 * the agent's own PUBACK must wait for the commit, which crash-embedded.test.ts proves.
 * A gateway that acknowledged on queueing (as before this test) fails it: the readings of the
 * batch being committed at the kill are gone from the broker, acknowledged.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { encodePayload, formatTopic } from "@coldtrace/protocol";
import { freePort, mqttUrl, requireService } from "@coldtrace/testkit";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { spawnGatewayProcess, until } from "./harness.ts";

const T0 = 1_764_057_600_000;
const PER_MESSAGE = 20;
const mosquitto = await requireService("mosquitto");

describe.skipIf(!mosquitto.available)(`gateway crash under load ${mosquitto.reason}`, () => {
  const run = randomBytes(3).toString("hex");
  const gatewayId = `crash-${run}`;
  const siteId = `crash-${run}`;
  const agentId = `crash-${run}-pi`;
  let dir: string;
  let file: string;
  let apiPort: number;
  let child: ChildProcess | undefined;
  let agent: MqttClient | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-crash-"));
    apiPort = await freePort();
    file = path.join(dir, "gateway.yaml");
    await writeFile(
      file,
      stringify({
        gatewayId,
        log: { level: "warn" },
        broker: { mode: "external", url: mqttUrl(), persistentSession: true, subscribeSites: [siteId] },
        storage: { records: { backend: "sqlite", path: "ct.db" }, readings: { backend: "sqlite" } },
        api: { host: "127.0.0.1", port: apiPort },
      }),
    );
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child?.once("exit", r));
      child.kill("SIGTERM");
      await gone;
    }
    await agent?.endAsync();
    // Leave nothing on the shared Mosquitto: the gateway's session and its retained state.
    const c = await connectAsync(mqttUrl(), { clientId: `coldtrace-gateway-${gatewayId}`, clean: true });
    await c.publishAsync(formatTopic({ kind: "gatewayState", gatewayId }), "", { qos: 1, retain: true });
    await c.endAsync();
    await rm(dir, { recursive: true, force: true });
  });

  const startGateway = () => spawnGatewayProcess(file, apiPort);

  function storedRows(): { rows: number; distinct: number } {
    const db = new DatabaseSync(path.join(dir, "ct.db"), { readOnly: true });
    try {
      const row = db
        .prepare("SELECT COUNT(*) AS rows, COUNT(DISTINCT seq) AS d FROM readings WHERE agent_id = ?")
        .get(agentId) as { rows: number; d: number };
      return { rows: Number(row.rows), distinct: Number(row.d) };
    } catch {
      return { rows: 0, distinct: 0 }; // not migrated yet
    } finally {
      db.close();
    }
  }

  let nextSeq = 1;
  let acked = 0;
  /** Publish `messages` telemetry messages, 20 in flight; count readings the broker acknowledged. */
  async function publish(client: MqttClient, messages: number, onAck?: () => void): Promise<void> {
    const topic = formatTopic({ kind: "telemetry", siteId, agentId, unitId: "u1" });
    const inflight = new Set<Promise<void>>();
    for (let m = 0; m < messages; m++) {
      const from = nextSeq;
      nextSeq += PER_MESSAGE;
      const body = encodePayload("telemetry", {
        v: 1,
        agentId,
        unitId: "u1",
        sessionId: `s-${run}`,
        sentAt: T0,
        readings: Array.from({ length: PER_MESSAGE }, (_, i) => ({
          seq: from + i,
          probeId: "p1",
          observedAt: T0 + (from + i) * 1000,
          tempC: 5,
          quality: "ok" as const,
        })),
      });
      const p = client.publishAsync(topic, body, { qos: 1 }).then(() => {
        acked += PER_MESSAGE;
        onAck?.();
      });
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      if (inflight.size >= 20) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  }

  it("stores every reading the agent got a PUBACK for exactly once after a SIGKILL", async () => {
    child = await startGateway();
    agent = await connectAsync(mqttUrl(), { clientId: `${agentId}-${run}`, clean: true });
    const first = child;
    let rowsAtKill = -1;
    // Kill as soon as the first batch is committed, while the agent is still publishing.
    const killer = (async () => {
      await until(() => storedRows().rows > 0 || first.exitCode !== null, "first commit", 30_000);
      rowsAtKill = storedRows().rows;
      first.kill("SIGKILL");
    })();
    await publish(agent, 300);
    await killer;
    if (first.exitCode === null && first.signalCode === null) await new Promise((r) => first.once("exit", r));
    const ackedAtKill = acked;
    // The agent keeps publishing while the gateway is down: the broker queues for its session.
    await publish(agent, 100);
    child = await startGateway();
    // A gateway that lost readings never gets there: the assertion below then shows how many.
    await until(() => storedRows().rows >= acked, "every acknowledged reading stored", 10_000).catch(
      () => {},
    );

    expect(rowsAtKill).toBeGreaterThan(0);
    expect(rowsAtKill).toBeLessThan(ackedAtKill); // the kill hit a gateway with work in flight
    expect(storedRows()).toEqual({ rows: acked, distinct: acked });
    expect(acked).toBe(400 * PER_MESSAGE);
  });
});
