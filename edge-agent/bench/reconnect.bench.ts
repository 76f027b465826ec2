/**
 * bench:reconnect — how soon a fleet of agents is back after its broker returns, and how
 * spread out the reconnections are.
 *
 *   FLEET publishers (the agent's own Publisher, real mqtt.js clients, default settings for
 *   backoff and timeouts) connected to an embedded broker in a child process
 *     ─▶ the broker process killed (SIGKILL: the port refuses, as when the gateway crashes or
 *        restarts) for an outage of OUTAGES seconds ─▶ a new broker process on the same port
 *     ─▶ per agent, from the moment the new broker listens:
 *          attempt  until the agent starts the connection attempt that succeeds (what the
 *                   backoff decides: the agent's part)
 *          CONNACK  until the broker has accepted it ("connected"; adds the handshake, which on
 *                   a loaded machine with the whole fleet in one process is mostly queueing)
 *
 * Target: p95 ≤ 5 s. Spread: the largest share of the fleet that came back within any one
 * second (a thousand agents must not all come back in the same second). Results go to
 * docs/benchmarks.md under "## Edge agent reconnect (bench:reconnect)".
 *
 *   npm run bench:reconnect                          # 100 agents, outages 3, 8, 15, 30 s
 *   BENCH_FLEET=50 BENCH_OUTAGES=2,6 npm run bench:reconnect
 */
import { type ChildProcess, spawn } from "node:child_process";
import { freePort } from "@coldtrace/testkit";
import pino from "pino";
import { mqttSettings } from "../src/agent/index.ts";
import { parseConfig } from "../src/config/index.ts";
import { Outbox } from "../src/outbox/index.ts";
import { Publisher } from "../src/publisher/index.ts";
import { machine, writeSection } from "./report.ts";

const FLEET = Number(process.env.BENCH_FLEET ?? 100);
const OUTAGES = (process.env.BENCH_OUTAGES ?? "3,8,15,30").split(",").map(Number);
const TARGET_P95_MS = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The defaults a technician gets: the agent's own config schema fills them in. */
function defaults(url: string) {
  return parseConfig(
    {
      agent: { id: "pi-bench", siteId: "bench" },
      mqtt: { url },
      units: [{ id: "u-1", kind: "fridge" }],
      buses: [
        {
          id: "b-1",
          type: "modbus-tcp",
          host: "127.0.0.1",
          probes: [{ id: "p-1", unit: "u-1", slaveId: 1, register: 0 }],
        },
      ],
    },
    "bench",
  ).mqtt;
}

interface Agent {
  publisher: Publisher;
  outbox: Outbox;
  /** performance.now() when each session's connection attempt started, by sessionId. */
  attempts: Map<string, number>;
  attemptAt: number;
  connectedAt: number;
}

/** The embedded broker in a child process of its own, so the fleet's event loop does not slow it. */
async function startBrokerProcess(port: number): Promise<{ child: ChildProcess; backAt: number }> {
  const child = spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { startEmbeddedBroker } from "@coldtrace/testkit"; await startEmbeddedBroker(${port}); console.log("listening");`,
    ],
    { stdio: ["ignore", "pipe", "inherit"], cwd: new URL("..", import.meta.url).pathname },
  );
  const backAt = await new Promise<number>((resolve, reject) => {
    child.stdout?.on("data", (d) => {
      if (String(d).includes("listening")) resolve(performance.now());
    });
    child.once("exit", (code) => reject(new Error(`broker process exited (${code})`)));
  });
  return { child, backAt };
}

async function killBroker(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

/** p50/p95/max and the largest share of the fleet within any one-second window. */
function summary(ms: readonly number[], fleet: number) {
  const sorted = [...ms].sort((x, y) => x - y);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  let peak = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while ((sorted[i] ?? 0) - (sorted[j] ?? 0) > 1000) j++;
    peak = Math.max(peak, i - j + 1);
  }
  return { p50: q(0.5), p95: q(0.95), max: sorted.at(-1) ?? 0, peakShare: peak / fleet };
}

async function main() {
  const port = await freePort();
  let broker = await startBrokerProcess(port);
  const m = defaults(`mqtt://127.0.0.1:${port}`);
  process.stderr.write(
    `fleet of ${FLEET}, reconnect ${m.reconnect.minMs}–${m.reconnect.maxMs} ms, connect timeout ${m.connectTimeoutMs} ms\n`,
  );
  const agents: Agent[] = [];
  for (let i = 0; i < FLEET; i++) {
    const agentId = `pi-${i}`;
    const outbox = Outbox.open({ path: ":memory:", agentId, maxReadings: 1000 });
    const a: Agent = {
      publisher: undefined as unknown as Publisher,
      outbox,
      attempts: new Map(),
      attemptAt: 0,
      connectedAt: 0,
    };
    // The publisher's own debug line "mqtt connecting" marks the start of each attempt.
    const log = pino(
      { level: "debug" },
      {
        write(line: string) {
          if (!line.includes('"mqtt connecting"')) return;
          const { sessionId } = JSON.parse(line) as { sessionId: string };
          a.attempts.set(sessionId, performance.now());
        },
      },
    );
    a.publisher = new Publisher({
      siteId: "bench",
      agentId,
      outbox,
      log,
      settings: mqttSettings(m),
      birth: {
        agentId,
        siteId: "bench",
        agentVersion: "0.1.0",
        configHash: "0".repeat(64),
        startedAt: Date.now(),
        units: [{ unitId: "u-1", kind: "fridge", probeIds: ["p-1"] }],
        probes: [
          {
            probeId: "p-1",
            unitId: "u-1",
            driver: "modbus-tcp",
            intervalMs: 10_000,
            calibrationOffsetC: 0,
            calibrationDueAt: null,
          },
        ],
      },
    });
    a.publisher.on("connected", (sessionId) => {
      a.connectedAt = performance.now();
      a.attemptAt = a.attempts.get(sessionId) ?? a.connectedAt;
      a.attempts.clear();
    });
    agents.push(a);
    a.publisher.start();
  }
  while (agents.some((a) => a.connectedAt === 0)) await sleep(50);
  process.stderr.write("all connected\n");

  const attemptAll: number[] = [];
  const connackAll: number[] = [];
  const rounds: {
    outageS: number;
    attempt: ReturnType<typeof summary>;
    connack: ReturnType<typeof summary>;
  }[] = [];
  for (const outageS of OUTAGES) {
    const lostAt = performance.now();
    await killBroker(broker.child);
    for (const a of agents) a.connectedAt = 0;
    await sleep(outageS * 1000 - (performance.now() - lostAt));
    broker = await startBrokerProcess(port);
    const deadline = broker.backAt + 120_000;
    while (agents.some((a) => a.connectedAt === 0) && performance.now() < deadline) await sleep(20);
    // An attempt started before the broker was back (and still in progress then) counts as 0.
    const attempt = agents.map((a) =>
      a.connectedAt === 0 ? Number.POSITIVE_INFINITY : Math.max(0, a.attemptAt - broker.backAt),
    );
    const connack = agents.map((a) =>
      a.connectedAt === 0 ? Number.POSITIVE_INFINITY : a.connectedAt - broker.backAt,
    );
    attemptAll.push(...attempt);
    connackAll.push(...connack);
    const r = { outageS, attempt: summary(attempt, FLEET), connack: summary(connack, FLEET) };
    rounds.push(r);
    process.stderr.write(`  outage ${outageS} s: ${JSON.stringify(r)}\n`);
  }
  for (const a of agents) await a.publisher.stop();
  for (const a of agents) a.outbox.close();
  await killBroker(broker.child);

  const attempt = summary(attemptAll, FLEET * OUTAGES.length);
  const connack = summary(connackAll, FLEET * OUTAGES.length);
  const worst = Math.max(...rounds.map((r) => r.connack.peakShare));
  const s = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)}` : "never");
  const body = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}.`,
    "",
    `${FLEET} agents (the agent's own publisher, one mqtt.js client each, in one process; the default backoff ${m.reconnect.minMs}–${m.reconnect.maxMs} ms with full jitter, connect timeout ${m.connectTimeoutMs} ms) are connected to the embedded broker, which runs in a process of its own. The broker process is killed (its port refuses, as when the gateway crashes or restarts) for each outage, then started again on the same port. From the moment it listens again: **attempt**, until each agent starts the connection attempt that succeeds (what the agent's backoff decides), and **CONNACK**, until the broker has accepted it (adds the handshake of the whole fleet at once, on this shared machine).`,
    "",
    "| Outage (s) | attempt p50 / p95 / max (s) | CONNACK p50 / p95 / max (s) | largest share back within one second |",
    "|---:|---:|---:|---:|",
    ...rounds.map(
      (r) =>
        `| ${r.outageS} | ${s(r.attempt.p50)} / ${s(r.attempt.p95)} / ${s(r.attempt.max)} | ${s(r.connack.p50)} / ${s(r.connack.p95)} / ${s(r.connack.max)} | ${(r.connack.peakShare * 100).toFixed(0)} % |`,
    ),
    "",
    `All outages: attempt p95 ${s(attempt.p95)} s; **CONNACK p95 ${s(connack.p95)} s** (target ≤ 5 s ${connack.p95 <= TARGET_P95_MS ? "✓" : "✗ over target"}); at most ${(worst * 100).toFixed(0)} % of the fleet reconnected within the same second. A broker host that drops packets instead of refusing (cable out, host powered off) adds up to the connect timeout to the first attempt after its return.`,
    "",
    "Re-run: `npm run bench:reconnect` (`BENCH_FLEET=50 BENCH_OUTAGES=2,6` for a shorter run).",
  ].join("\n");
  if (process.env.BENCH_NO_WRITE !== "1") writeSection("## Edge agent reconnect (bench:reconnect)", body);
  process.stdout.write(`${body}\n`);
}

await main();
