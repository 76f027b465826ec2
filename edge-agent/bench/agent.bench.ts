/**
 * bench:agent — the edge agent's footprint and its replay speed.
 *
 *   1. RSS and CPU of the real agent process (`cli/main.ts run`) polling 32 and 200 probes at
 *      10 s over Modbus TCP (simulators), publishing to an embedded broker. Sampled from
 *      /proc/<pid> after a warm-up, over BENCH_SECONDS (default 60).
 *      Targets: ≤ 90 MiB RSS and ≤ 1 % of one core at 32 probes.
 *   2. Replay throughput: a 100k-reading backlog in the outbox drained to the embedded broker
 *      (QoS 1, batches, in-flight window), readings/s. Target ≥ 20k readings/s.
 *
 * Results go to docs/benchmarks.md under "## Edge agent (bench:agent)", replacing only that
 * section, with machine, date and commit.
 *
 *   npm run bench:agent                 # full run (~3 min)
 *   BENCH_SECONDS=20 npm run bench:agent
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { startTcpSlave } from "@coldtrace/simulators";
import { startEmbeddedBroker } from "@coldtrace/testkit";
import pino from "pino";
import { stringify } from "yaml";
import { type NewReading, Outbox } from "../src/outbox/index.ts";
import { Publisher } from "../src/publisher/index.ts";
import { tempDir } from "../test/helpers/tmp.ts";

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

async function footprint(probes: number): Promise<Footprint> {
  const tmp = tempDir("ct-bench-");
  const slaves = Math.ceil(probes / PER_SLAVE);
  const sim = await startTcpSlave({
    slaves: Array.from({ length: slaves }, (_, s) => ({
      id: s + 1,
      channels: Array.from({ length: PER_SLAVE }, (_, r) => ({ register: r, baseC: 4, noiseC: 0.3 })),
    })),
  });
  const broker = await startEmbeddedBroker();
  let received = 0;
  broker.aedes.on("publish", (packet) => {
    if (packet.topic.includes("/telemetry/"))
      received += (JSON.parse(String(packet.payload)) as { readings: unknown[] }).readings.length;
  });
  const unitCount = Math.ceil(probes / 8);
  const config = join(tmp.dir, "agent.yaml");
  writeFileSync(
    config,
    stringify({
      agent: { id: "pi-bench", siteId: "bench", dataDir: tmp.dir },
      mqtt: { url: broker.url },
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
  const child = spawn(process.execPath, [...NODE_FLAGS, MAIN, "run", "--config", config], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const pid = child.pid ?? 0;
  await sleep(WARMUP_S * 1000);
  const ticks0 = procCpuTicks(pid);
  const received0 = received;
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
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
  await broker.close();
  await sim.close();
  tmp.remove();
  return {
    probes,
    rssMiB: rssSum / samples / MiB,
    rssMaxMiB: rssMax / MiB,
    cpuPercent: (cpuS / elapsedS) * 100,
    readings: received - received0,
  };
}

interface Replay {
  backlog: number;
  seconds: number;
  readingsPerSecond: number;
}

async function replay(backlog: number): Promise<Replay> {
  const tmp = tempDir("ct-bench-");
  const outbox = Outbox.open({
    path: join(tmp.dir, "outbox.db"),
    agentId: "pi-bench",
    maxReadings: 1_000_000,
  });
  const t = Date.UTC(2026, 10, 1);
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
  const broker = await startEmbeddedBroker();
  const publisher = new Publisher({
    siteId: "bench",
    agentId: "pi-bench",
    outbox,
    log: pino({ level: "silent" }),
    birth: {
      agentId: "pi-bench",
      siteId: "bench",
      agentVersion: "0.1.0",
      configHash: "0".repeat(64),
      startedAt: t,
      units: [{ unitId: "unit-0", kind: "fridge", probeIds: ["p-0"] }],
      probes: [
        {
          probeId: "p-0",
          unitId: "unit-0",
          driver: "modbus-tcp",
          intervalMs: 10_000,
          calibrationOffsetC: 0,
          calibrationDueAt: null,
        },
      ],
    },
    settings: {
      url: broker.url,
      keepaliveSec: 30,
      connectTimeoutMs: 5000,
      reconnect: { minMs: 100, maxMs: 1000 },
      batchMaxReadings: 500,
      batchDelayMs: 500,
      inflightWindow: 64,
    },
  });
  const t0 = performance.now();
  publisher.start();
  await new Promise<void>((resolve) => {
    const check = () => (outbox.stats().depth === 0 ? resolve() : setTimeout(check, 5));
    check();
  });
  const seconds = (performance.now() - t0) / 1000;
  await publisher.stop();
  await broker.close();
  outbox.close();
  tmp.remove();
  return { backlog, seconds, readingsPerSecond: backlog / seconds };
}

function machine(): string {
  const cpus = os.cpus();
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"]).toString().trim();
  } catch {}
  return `${cpus[0]?.model ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, ${os.type()} ${os.release()} ${os.arch()}, Node ${process.version}, commit ${commit}`;
}

function writeSection(body: string): void {
  const file = new URL("../../docs/benchmarks.md", import.meta.url);
  const heading = "## Edge agent (bench:agent)";
  const doc = readFileSync(file, "utf8");
  const start = doc.indexOf(heading);
  let next: string;
  if (start === -1) next = `${doc.trimEnd()}\n\n${heading}\n\n${body}\n`;
  else {
    const after = doc.indexOf("\n## ", start + heading.length);
    next = `${doc.slice(0, start)}${heading}\n\n${body}\n${after === -1 ? "" : doc.slice(after)}`;
  }
  writeFileSync(file, next);
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
  `The real agent process (\`cli/main.ts run\`) polls probes at a 10 s interval from the Modbus TCP simulator (${PER_SLAVE} probes per slave, block reads) and publishes to the embedded broker; RSS and CPU are read from /proc after a ${WARMUP_S} s warm-up, over ${SECONDS} s. The simulators and the broker run in the bench process, not in the agent.`,
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
  `Replay: a ${rep.backlog.toLocaleString("en")}-reading backlog (200 probes) drained to the embedded broker at QoS 1 (batches of 500, 64 in flight, rows deleted on PUBACK) in ${rep.seconds.toFixed(2)} s: **${Math.round(rep.readingsPerSecond).toLocaleString("en")} readings/s** (target ≥ 20,000 ${ok(rep.readingsPerSecond >= 20_000)}).`,
  "",
  "Re-run: `npm run bench:agent` (`BENCH_SECONDS=20` for a shorter window).",
].join("\n");
if (process.env.BENCH_NO_WRITE !== "1") writeSection(body);
process.stdout.write(`${body}\n`);
