/**
 * PUBACK after commit on the embedded broker: the broker lives in the gateway process, so a
 * kill -9 takes both down. What the agent holds a PUBACK for it has deleted from its outbox;
 * every such reading must be in the database when the gateway comes back. aedes alone writes
 * the PUBACK on receipt, before the gateway stores anything; the broker's ingest handoff
 * (gateway/src/broker/embedded.ts) makes it wait for the commit.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { encodePayload, formatTopic } from "@coldtrace/protocol";
import { freePort } from "@coldtrace/testkit";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { CredentialStore } from "../../src/broker/credentials.ts";
import { spawnGatewayProcess, until } from "./harness.ts";

const T0 = 1_764_057_600_000;
const PER_MESSAGE = 20;

describe("gateway crash under load, embedded broker", () => {
  const run = randomBytes(3).toString("hex");
  const siteId = `crashe-${run}`;
  const agentId = `crashe-${run}-pi`;
  const secret = randomBytes(12).toString("hex");
  let dir: string;
  let file: string;
  let brokerPort: number;
  let apiPort: number;
  let child: ChildProcess | undefined;
  let agent: MqttClient | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-crashe-"));
    brokerPort = await freePort();
    apiPort = await freePort();
    const credentials = new CredentialStore();
    await credentials.add({ username: agentId, role: "agent", siteIds: [siteId], agentId, secret });
    await credentials.save(path.join(dir, "credentials.json"));
    file = path.join(dir, "gateway.yaml");
    await writeFile(
      file,
      stringify({
        gatewayId: `gw-${run}`,
        log: { level: "warn" },
        broker: { host: "127.0.0.1", port: brokerPort, credentialsFile: "credentials.json" },
        storage: { records: { backend: "sqlite", path: "ct.db" }, readings: { backend: "sqlite" } },
        api: { host: "127.0.0.1", port: apiPort },
      }),
    );
  });

  afterAll(async () => {
    agent?.end(true);
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child?.once("exit", r));
      child.kill("SIGTERM");
      await gone;
    }
    await rm(dir, { recursive: true, force: true });
  });

  const startGateway = () => spawnGatewayProcess(file, apiPort);

  function storedSeqs(): number[] {
    const db = new DatabaseSync(path.join(dir, "ct.db"), { readOnly: true });
    try {
      return (
        db.prepare("SELECT seq FROM readings WHERE agent_id = ? ORDER BY seq").all(agentId) as {
          seq: number;
        }[]
      ).map((r) => Number(r.seq));
    } catch {
      return []; // not migrated yet
    } finally {
      db.close();
    }
  }

  it("stores every reading the agent got a PUBACK for after a SIGKILL of the gateway", async () => {
    child = await startGateway();
    const first = child;
    agent = await connectAsync(`mqtt://127.0.0.1:${brokerPort}`, {
      clientId: agentId,
      username: agentId,
      password: secret,
      reconnectPeriod: 0,
    });
    const client = agent;
    const closed = new Promise<void>((r) => client.once("close", () => r()));
    const acked: number[] = [];
    const topic = formatTopic({ kind: "telemetry", siteId, agentId, unitId: "u1" });
    let nextSeq = 1;
    let killed = false;
    const killer = (async () => {
      // Kill at the worst moment for a broker that acknowledges on receipt: when the agent
      // holds PUBACKs for more than is stored. After the fix that moment never comes (PUBACK
      // follows the commit), so the kill falls two seconds into the load instead.
      const start = Date.now();
      await until(
        () => {
          const n = storedSeqs().length;
          return n > 0 && (acked.length > n + 100 || Date.now() - start > 2000);
        },
        "a commit under load",
        30_000,
      );
      first.kill("SIGKILL");
      killed = true;
    })();
    // 20 messages in flight, as an agent replaying its outbox, until the broker is gone.
    const inflight = new Set<Promise<void>>();
    while (!killed && nextSeq < 200_000) {
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
      const p = client.publishAsync(topic, body, { qos: 1 }).then(
        () => {
          for (let i = 0; i < PER_MESSAGE; i++) acked.push(from + i);
        },
        () => {},
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      if (inflight.size >= 20) await Promise.race([...inflight, closed]);
    }
    await killer;
    await closed;
    expect(acked.length).toBeGreaterThan(1000); // the kill came under load

    child = await startGateway();
    const stored = new Set(storedSeqs());
    const lost = acked.filter((seq) => !stored.has(seq));
    expect(lost).toEqual([]);
    expect(storedSeqs().length).toBe(stored.size); // no reading twice
  });
});
