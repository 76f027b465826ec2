/**
 * Durability end to end: the real CLI (`main.ts run`) as a child process polls simulated probes
 * over Modbus TCP while the broker is down, is killed with SIGKILL (twice: once offline, once in
 * the middle of its replay), restarted, and when the broker is back the subscriber receives
 * every sequence number exactly once after dedupe by (agent, seq), none missing, and per probe
 * sequence order equals event-time order.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startTcpSlave, type TcpSlaveSim } from "@coldtrace/simulators";
import { type EmbeddedBroker, freePort, startEmbeddedBroker } from "@coldtrace/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { readOutboxSnapshot } from "../../src/outbox/index.ts";
import { subscribe, type TestSubscriber } from "../helpers/subscriber.ts";
import { tempDir } from "../helpers/tmp.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
const AGENT = "pi-durable";
const PROBES = 4;

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function nextSeq(path: string): number {
  try {
    return readOutboxSnapshot(path).nextSeq;
  } catch {
    return 1;
  }
}

describe("kill -9 durability", () => {
  let tmp: ReturnType<typeof tempDir>;
  let sim: TcpSlaveSim;
  let broker: EmbeddedBroker | undefined;
  let sub: TestSubscriber | undefined;
  let child: ChildProcess | undefined;
  let configFile: string;
  let outboxPath: string;
  let brokerPort: number;
  let stderr = "";

  const startAgent = () => {
    const c = spawn(process.execPath, [MAIN, "run", "--config", configFile], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    c.stderr?.on("data", (d) => {
      stderr += String(d);
    });
    child = c;
    return c;
  };
  const kill9 = async () => {
    const c = child;
    if (!c) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill("SIGKILL");
    await exited;
    child = undefined;
  };

  beforeAll(async () => {
    tmp = tempDir();
    sim = await startTcpSlave({
      slaves: [
        {
          id: 1,
          channels: Array.from({ length: PROBES }, (_, i) => ({ register: i, baseC: 4 + i, noiseC: 0.2 })),
        },
      ],
    });
    brokerPort = await freePort();
    outboxPath = join(tmp.dir, "outbox.db");
    configFile = join(tmp.dir, "agent.yaml");
    writeFileSync(
      configFile,
      stringify({
        agent: { id: AGENT, siteId: "store-12", dataDir: tmp.dir, statusIntervalMs: 1000 },
        mqtt: {
          url: `mqtt://127.0.0.1:${brokerPort}`,
          reconnect: { minMs: 50, maxMs: 300 },
          batch: { maxReadings: 50, delayMs: 20 },
          inflightWindow: 8,
        },
        units: [{ id: "fridge-2", kind: "fridge" }],
        logging: { level: "warn" },
        buses: [
          {
            id: "tcp-1",
            type: "modbus-tcp",
            host: "127.0.0.1",
            port: sim.port,
            timeoutMs: 500,
            probes: Array.from({ length: PROBES }, (_, i) => ({
              id: `fridge-2-p${i}`,
              unit: "fridge-2",
              slaveId: 1,
              register: i,
              scale: 0.1,
              intervalMs: 100,
            })),
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    if (child) await kill9();
    await sub?.close();
    await broker?.close();
    await sim.close();
    tmp.remove();
  });

  it("delivers every stored reading exactly once after dedupe, across kill -9 and a broker outage", async () => {
    // 1. Broker down: readings pile up in the outbox.
    startAgent();
    await until("readings in the outbox", () => nextSeq(outboxPath) > 30);
    await kill9();
    const afterFirstKill = nextSeq(outboxPath);
    expect(readOutboxSnapshot(outboxPath).depth).toBe(afterFirstKill - 1);

    // 2. Restarted, still offline: the counter continues, nothing is reused.
    startAgent();
    await until("more readings after restart", () => nextSeq(outboxPath) > afterFirstKill + 20);

    // `status` reads the outbox while the agent is writing it (WAL: a concurrent reader).
    await until("status written", () => readOutboxSnapshot(outboxPath).status.pid?.value === child?.pid);
    const status = execFileSync(process.execPath, [MAIN, "status", "--config", configFile]).toString();
    expect(status).toContain(`running (pid ${child?.pid})`);
    expect(status).toMatch(/outbox\s+\d+ reading\(s\) waiting/);
    expect(status).toContain("mqtt          not connected");

    // 3. Broker back. The subscriber is in before the agent may connect.
    let gateOpen = false;
    broker = await startEmbeddedBroker(brokerPort);
    broker.aedes.authenticate = (client, _u, _p, done) => done(null, gateOpen || client.id !== `ct-${AGENT}`);
    sub = await subscribe(broker.url, `ct/v1/store-12/agent/${AGENT}/#`);
    gateOpen = true;
    const seqs = () =>
      new Set(
        (sub?.messages ?? []).flatMap((m) =>
          m.message.kind === "telemetry" ? m.message.payload.readings.map((r) => r.seq) : [],
        ),
      );

    // 4. Killed again in the middle of the replay, then restarted for good.
    await until("replay under way", () => seqs().size > 10);
    await kill9();
    startAgent();
    await until(
      "second session",
      () => (sub?.messages ?? []).filter((m) => m.message.kind === "birth").length >= 2,
    );

    // 5. Orderly stop once everything written so far has been seen.
    await until("outbox drained", () => {
      const snap = readOutboxSnapshot(outboxPath);
      return snap.depth === 0 && seqs().size >= snap.nextSeq - 1;
    });
    const c = child;
    const exited = new Promise<number | null>((r) => c?.once("exit", r));
    c?.kill("SIGTERM");
    expect(await exited).toBe(0);
    child = undefined;

    const final = readOutboxSnapshot(outboxPath);
    expect(final.depth).toBe(0);
    const readings = sub.messages.flatMap((m) =>
      m.message.kind === "telemetry" ? m.message.payload.readings : [],
    );
    const byseq = new Map<number, (typeof readings)[number]>();
    for (const r of readings) {
      const seen = byseq.get(r.seq);
      // A duplicate (lost PUBACK) must be the very same reading.
      if (seen) expect({ ...r, backfill: false }).toEqual({ ...seen, backfill: false });
      else byseq.set(r.seq, r);
    }
    const expected = Array.from({ length: final.nextSeq - 1 }, (_, i) => i + 1);
    expect([...byseq.keys()].sort((a, b) => a - b)).toEqual(expected);
    for (let p = 0; p < PROBES; p++) {
      const own = [...byseq.values()]
        .filter((r) => r.probeId === `fridge-2-p${p}`)
        .sort((a, b) => a.seq - b.seq);
      expect(own.length).toBeGreaterThan(5);
      for (let i = 1; i < own.length; i++)
        expect(own[i]?.observedAt).toBeGreaterThanOrEqual(own[i - 1]?.observedAt ?? 0);
    }
    expect(readings.some((r) => r.backfill)).toBe(true);
    const states = sub.messages.filter((m) => m.message.kind === "agentState").map((m) => m.message.payload);
    expect(states.at(-1)).toMatchObject({ state: "offline", reason: "shutdown" });
    expect(stderr).toBe("");
  }, 90_000);
});
