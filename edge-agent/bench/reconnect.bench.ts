/**
 * bench:reconnect — how soon a fleet of agents is back after its broker returns, and how
 * spread out the reconnections are.
 *
 *   FLEET publishers (the agent's own Publisher, real mqtt.js clients, default settings for
 *   backoff and timeouts) connected to an embedded broker
 *     ─▶ broker stopped for an outage of OUTAGES seconds (the port refuses, as when the
 *        gateway restarts) ─▶ broker started again on the same port
 *     ─▶ per agent: time from the broker listening again to the agent's CONNACK ("connected")
 *
 * Target: p95 ≤ 5 s. Spread: the largest share of the fleet that reconnected within any one
 * second (a thousand agents must not all come back in the same second). Results go to
 * docs/benchmarks.md under "## Edge agent reconnect (bench:reconnect)".
 *
 *   npm run bench:reconnect                          # 200 agents, outages 3, 8, 15, 30 s
 *   BENCH_FLEET=50 BENCH_OUTAGES=2,6 npm run bench:reconnect
 */
import { type EmbeddedBroker, freePort, startEmbeddedBroker } from "@coldtrace/testkit";
import pino from "pino";
import { mqttSettings } from "../src/agent/index.ts";
import { parseConfig } from "../src/config/index.ts";
import { Outbox } from "../src/outbox/index.ts";
import { Publisher } from "../src/publisher/index.ts";
import { machine, writeSection } from "./report.ts";

const FLEET = Number(process.env.BENCH_FLEET ?? 200);
const OUTAGES = (process.env.BENCH_OUTAGES ?? "3,8,15,30").split(",").map(Number);
const TARGET_P95_MS = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = pino({ level: "silent" });

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
  connectedAt: number;
}

async function main() {
  const port = await freePort();
  let broker: EmbeddedBroker = await startEmbeddedBroker(port);
  const m = defaults(broker.url);
  process.stderr.write(
    `fleet of ${FLEET}, reconnect ${m.reconnect.minMs}–${m.reconnect.maxMs} ms, connect timeout ${m.connectTimeoutMs} ms\n`,
  );
  const agents: Agent[] = [];
  for (let i = 0; i < FLEET; i++) {
    const agentId = `pi-${i}`;
    const outbox = Outbox.open({ path: ":memory:", agentId, maxReadings: 1000 });
    const publisher = new Publisher({
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
    const a: Agent = { publisher, outbox, connectedAt: 0 };
    publisher.on("connected", () => {
      a.connectedAt = performance.now();
    });
    agents.push(a);
    publisher.start();
  }
  while (agents.some((a) => a.connectedAt === 0)) await sleep(50);
  process.stderr.write("all connected\n");

  const delays: number[] = [];
  let worstSecondShare = 0;
  const rounds: { outageS: number; p50: number; p95: number; max: number; peakShare: number }[] = [];
  for (const outageS of OUTAGES) {
    await broker.close();
    const lostAt = performance.now();
    for (const a of agents) a.connectedAt = 0;
    await sleep(outageS * 1000 - (performance.now() - lostAt));
    broker = await startEmbeddedBroker(port);
    const backAt = performance.now();
    const deadline = backAt + 120_000;
    while (agents.some((a) => a.connectedAt === 0) && performance.now() < deadline) await sleep(20);
    const round = agents.map((a) =>
      a.connectedAt === 0 ? Number.POSITIVE_INFINITY : a.connectedAt - backAt,
    );
    delays.push(...round);
    // Largest number of agents back within any one-second window.
    const sorted = [...round].sort((x, y) => x - y);
    let peak = 0;
    for (let i = 0, j = 0; i < sorted.length; i++) {
      while ((sorted[i] ?? 0) - (sorted[j] ?? 0) > 1000) j++;
      peak = Math.max(peak, i - j + 1);
    }
    const share = peak / FLEET;
    worstSecondShare = Math.max(worstSecondShare, share);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
    const r = { outageS, p50: q(0.5), p95: q(0.95), max: sorted.at(-1) ?? 0, peakShare: share };
    rounds.push(r);
    process.stderr.write(`  outage ${outageS} s: ${JSON.stringify(r)}\n`);
  }
  for (const a of agents) await a.publisher.stop();
  for (const a of agents) a.outbox.close();
  await broker.close();

  const all = [...delays].sort((x, y) => x - y);
  const q = (p: number) => all[Math.min(all.length - 1, Math.floor(p * all.length))] ?? 0;
  const p95 = q(0.95);
  const s = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)}` : "never");
  const body = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}.`,
    "",
    `${FLEET} agents (the agent's own publisher, one mqtt.js client each, the default backoff ${m.reconnect.minMs}–${m.reconnect.maxMs} ms with jitter and connect timeout ${m.connectTimeoutMs} ms) are connected to an embedded broker; the broker is stopped (its port refuses, as when the gateway restarts) for each outage, then started again on the same port. Time from the broker listening again to each agent's CONNACK:`,
    "",
    "| Outage (s) | p50 (s) | p95 (s) | max (s) | largest share back within one second |",
    "|---:|---:|---:|---:|---:|",
    ...rounds.map(
      (r) =>
        `| ${r.outageS} | ${s(r.p50)} | ${s(r.p95)} | ${s(r.max)} | ${(r.peakShare * 100).toFixed(0)} % |`,
    ),
    "",
    `All outages: p50 ${s(q(0.5))} s, **p95 ${s(p95)} s** (target ≤ 5 s ${p95 <= TARGET_P95_MS ? "✓" : "✗ over target"}); at most ${(worstSecondShare * 100).toFixed(0)} % of the fleet reconnected within the same second. A broker host that drops packets instead of refusing (cable out, host powered off) adds up to the connect timeout to the first attempt after its return.`,
    "",
    "Re-run: `npm run bench:reconnect` (`BENCH_FLEET=50 BENCH_OUTAGES=2,6` for a shorter run).",
  ].join("\n");
  if (process.env.BENCH_NO_WRITE !== "1") writeSection("## Edge agent reconnect (bench:reconnect)", body);
  process.stdout.write(`${body}\n`);
}

await main();
