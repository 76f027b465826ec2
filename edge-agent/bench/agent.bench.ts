/**
 * bench:agent — the edge agent's footprint and its replay speed.
 *
 *   1. RSS and CPU of the agent as deployed (bundle, unit's Node flags and env) polling 32 and 200 probes at
 *      10 s over Modbus TCP (simulators), publishing to an embedded broker. Sampled from
 *      /proc/<pid> after a warm-up, over BENCH_SECONDS (default 60).
 *      Targets: ≤ 90 MiB RSS and ≤ 1 % of one core at 32 probes.
 *   2. Replay throughput: the deployed agent starts with a 100k-reading backlog in its outbox
 *      and drains it to the embedded broker (QoS 1, batches, in-flight window), readings/s.
 *      Target ≥ 20k readings/s.
 *
 * Results go to docs/benchmarks.md under "## Edge agent (bench:agent)", replacing only that
 * section, with machine, date and commit.
 *
 *   npm run bench:agent                 # full run (~3 min)
 *   BENCH_SECONDS=20 npm run bench:agent
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startTcpSlave } from "@coldtrace/simulators";
import { startEmbeddedBroker } from "@coldtrace/testkit";
import { stringify } from "yaml";
import { type NewReading, Outbox } from "../src/outbox/index.ts";
import { tempDir } from "../test/helpers/tmp.ts";
import { machine, writeSection } from "./report.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const WARMUP_S = Number(process.env.BENCH_WARMUP_SECONDS ?? 15);
/** The agent as deployed: the bundle from deploy/build.ts (BENCH_AGENT=src runs the .ts sources). */
const MAIN =
  process.env.BENCH_AGENT === "src"
    ? new URL("../src/cli/main.ts", import.meta.url).pathname
    : new URL("../build/coldtrace-agent.mjs", import.meta.url).pathname;
if (process.env.BENCH_AGENT !== "src")
  execFileSync(process.execPath, [new URL("../deploy/build.ts", import.meta.url).pathname]);
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
const PER_SLAVE = 25;
/** The Node flags the systemd unit runs the agent with (deploy/coldtrace-agent.service ExecStart). */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? deployNodeFlags()).split(" ").filter(Boolean);

/** Environment= lines of the unit (UV_THREADPOOL_SIZE …), applied to the agent as systemd would. */
function deployEnv(): Record<string, string> {
  const unit = readFileSync(new URL("../deploy/coldtrace-agent.service", import.meta.url), "utf8");
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)) {
    if (m[1] && m[1] !== "COLDTRACE_AGENT_CONFIG") env[m[1]] = m[2] ?? "";
  }
  return env;
}

function deployNodeFlags(): string {
  const unit = readFileSync(new URL("../deploy/coldtrace-agent.service", import.meta.url), "utf8");
  const m = /^ExecStart=\S+ (.*?)\S+\/coldtrace-agent\.mjs run/m.exec(unit);
  return m?.[1]?.trim() ?? "";
}
const MiB = 1024 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function procCpuTicks(pid: number): number {
  // /proc/<pid>/stat: fields 14 and 15 are utime and stime in clock ticks (proc(5)).
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

function procRssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

interface Footprint {
  probes: number;
  rssMiB: number;
  rssMaxMiB: number;
  cpuPercent: number;
  readings: number;
}

interface Rig {
  dir: string;
  config: string;
  outboxPath: string;
  broker: Awaited<ReturnType<typeof startEmbeddedBroker>>;
  /** Telemetry readings the broker received: all, and replayed (backfill). */
  counts: { readings: number; backfill: number; lastBackfillAt: number; birthAt: number };
  startAgent(): ReturnType<typeof spawn>;
  close(): Promise<void>;
}

/** Simulated probes over Modbus TCP, an embedded broker, and an agent config for them. */
async function rig(probes: number): Promise<Rig> {
  const tmp = tempDir("ct-bench-");
  const slaves = Math.ceil(probes / PER_SLAVE);
  const sim = await startTcpSlave({
    slaves: Array.from({ length: slaves }, (_, s) => ({
      id: s + 1,
      channels: Array.from({ length: PER_SLAVE }, (_, r) => ({ register: r, baseC: 4, noiseC: 0.3 })),
    })),
  });
  const broker = await startEmbeddedBroker();
  const counts = { readings: 0, backfill: 0, lastBackfillAt: 0, birthAt: 0 };
  broker.aedes.on("publish", (packet) => {
    if (packet.topic.endsWith("/birth")) counts.birthAt = performance.now();
    if (!packet.topic.includes("/telemetry/")) return;
    const readings = (JSON.parse(String(packet.payload)) as { readings: { backfill: boolean }[] }).readings;
    counts.readings += readings.length;
    const replayed = readings.filter((r) => r.backfill).length;
    if (replayed > 0) {
      counts.backfill += replayed;
      counts.lastBackfillAt = performance.now();
    }
  });
  const unitCount = Math.ceil(probes / 8);
  const config = join(tmp.dir, "agent.yaml");
  writeFileSync(
    config,
    stringify({
      agent: { id: "pi-bench", siteId: "bench", dataDir: tmp.dir },
      mqtt: { url: broker.url },
      outbox: { maxReadings: 1_000_000 },
      units: Array.from({ length: unitCount }, (_, u) => ({ id: `unit-${u}`, kind: "fridge" })),
      logging: { level: "warn" },
      buses: [
        {
          id: "tcp-1",
          type: "modbus-tcp",
          host: "127.0.0.1",
          port: sim.port,
          maxBlockGap: 4,
          probes: Array.from({ length: probes }, (_, i) => ({
            id: `p-${i}`,
            unit: `unit-${Math.floor(i / 8)}`,
            slaveId: Math.floor(i / PER_SLAVE) + 1,
            register: i % PER_SLAVE,
            scale: 0.1,
            intervalMs: 10_000,
          })),
        },
      ],
    }),
  );
  let child: ReturnType<typeof spawn> | undefined;
  return {
    dir: tmp.dir,
    config,
    outboxPath: join(tmp.dir, "outbox.db"),
    broker,
    counts,
    startAgent() {
      child = spawn(process.execPath, [...NODE_FLAGS, MAIN, "run", "--config", config], {
        stdio: ["ignore", "ignore", "inherit"],
        env: { ...process.env, ...deployEnv() },
      });
      return child;
    },
    async close() {
      const c = child;
      if (c && c.exitCode === null) {
        const exited = new Promise((r) => c.once("exit", r));
        c.kill("SIGTERM");
        await exited;
      }
      await broker.close();
      await sim.close();
      tmp.remove();
    },
  };
}

async function footprint(probes: number): Promise<Footprint> {
  const r = await rig(probes);
  const pid = r.startAgent().pid ?? 0;
  await sleep(WARMUP_S * 1000);
  const ticks0 = procCpuTicks(pid);
  const received0 = r.counts.readings;
  const t0 = performance.now();
  let rssMax = 0;
  let rssSum = 0;
  let samples = 0;
  while (performance.now() - t0 < SECONDS * 1000) {
    await sleep(1000);
    const rss = procRssBytes(pid);
    rssMax = Math.max(rssMax, rss);
    rssSum += rss;
    samples += 1;
  }
  const elapsedS = (performance.now() - t0) / 1000;
  const cpuS = (procCpuTicks(pid) - ticks0) / CLK_TCK;
  const readings = r.counts.readings - received0;
  await r.close();
  return {
    probes,
    rssMiB: rssSum / samples / MiB,
    rssMaxMiB: rssMax / MiB,
    cpuPercent: (cpuS / elapsedS) * 100,
    readings,
  };
}

interface Replay {
  backlog: number;
  seconds: number;
  readingsPerSecond: number;
  rssMaxMiB: number;
}

/**
 * The deployed agent starts with a backlog in its outbox (200 probes, as after a long outage)
 * and replays it to the broker while polling live. Timed from its birth to the last replayed
 * reading the broker received.
 */
async function replay(backlog: number): Promise<Replay> {
  const r = await rig(200);
  const outbox = Outbox.open({ path: r.outboxPath, agentId: "pi-bench", maxReadings: 1_000_000 });
  const t = Date.now() - 30 * 86_400_000;
  const chunk: NewReading[] = [];
  for (let i = 0; i < backlog; i++) {
    const probe = i % 200;
    chunk.push({
      probeId: `p-${probe}`,
      unitId: `unit-${Math.floor(probe / 8)}`,
      observedAt: t + Math.floor(i / 200) * 10_000,
      tempC: 4 + (i % 7) / 10,
      quality: "ok",
    });
    if (chunk.length === 1000) outbox.append(chunk.splice(0));
  }
  outbox.append(chunk.splice(0));
  outbox.close();
  const pid = r.startAgent().pid ?? 0;
  let rssMax = 0;
  const deadline = performance.now() + 300_000;
  while (r.counts.backfill < backlog && performance.now() < deadline) {
    await sleep(20);
    try {
      rssMax = Math.max(rssMax, procRssBytes(pid));
    } catch {}
  }
  const seconds = (r.counts.lastBackfillAt - r.counts.birthAt) / 1000;
  await r.close();
  return { backlog, seconds, readingsPerSecond: backlog / seconds, rssMaxMiB: rssMax / MiB };
}

const results: Footprint[] = [];
for (const n of (process.env.BENCH_PROBES ?? "32,200").split(",").filter(Boolean).map(Number)) {
  process.stderr.write(`footprint: ${n} probes, ${WARMUP_S} s warm-up + ${SECONDS} s …\n`);
  const r = await footprint(n);
  results.push(r);
  process.stderr.write(`  ${JSON.stringify(r)}\n`);
}
if (process.env.BENCH_DRY === "1") process.exit(0);
process.stderr.write("replay: 100k backlog …\n");
const rep = await replay(100_000);
process.stderr.write(`  ${JSON.stringify(rep)}\n`);

const ok = (good: boolean) => (good ? "✓" : "✗ over target");
const at32 = results[0];
const body = [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}.`,
  "",
  `The agent as deployed (the bundle from \`npm run build\`, with the Node flags and environment of deploy/coldtrace-agent.service: \`${NODE_FLAGS.join(" ")}\`, ${Object.entries(
    deployEnv(),
  )
    .map(([k, v]) => `${k}=${v}`)
    .join(
      ", ",
    )}) polls probes at a 10 s interval from the Modbus TCP simulator (${PER_SLAVE} probes per slave, block reads) and publishes to the embedded broker; RSS and CPU are read from /proc after a ${WARMUP_S} s warm-up, over ${SECONDS} s. The simulators and the broker run in the bench process, not in the agent.`,
  "",
  "| Probes @ 10 s | RSS mean (MiB) | RSS max (MiB) | CPU (% of one core) | Readings published |",
  "|---:|---:|---:|---:|---:|",
  ...results.map(
    (r) =>
      `| ${r.probes} | ${r.rssMiB.toFixed(1)} | ${r.rssMaxMiB.toFixed(1)} | ${r.cpuPercent.toFixed(2)} | ${r.readings} |`,
  ),
  "",
  `Targets at 32 probes: RSS ≤ 90 MiB ${ok((at32?.rssMaxMiB ?? 1e9) <= 90)}, CPU ≤ 1 % ${ok((at32?.cpuPercent ?? 1e9) <= 1)}.`,
  "",
  `Replay: the deployed agent starts with a ${rep.backlog.toLocaleString("en")}-reading backlog in its outbox (200 probes) and drains it to the embedded broker at QoS 1 (batches of 500, 64 in flight, rows deleted on PUBACK) while polling live, in ${rep.seconds.toFixed(2)} s from its birth to the last replayed reading (RSS peak ${rep.rssMaxMiB.toFixed(1)} MiB): **${Math.round(rep.readingsPerSecond).toLocaleString("en")} readings/s** (target ≥ 20,000 ${ok(rep.readingsPerSecond >= 20_000)}).`,
  "",
  "Re-run: `npm run bench:agent` (`BENCH_SECONDS=20` for a shorter window).",
].join("\n");
if (process.env.BENCH_NO_WRITE !== "1") writeSection("## Edge agent (bench:agent)", body);
process.stdout.write(`${body}\n`);
