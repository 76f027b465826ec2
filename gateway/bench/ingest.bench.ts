/**
 * bench:ingest — the gateway end to end, as deployed: the gateway runs as its own process
 * (`coldtrace-gateway run`), the fleet generator publishes over MQTT like real agents, and the
 * bench counts stored rows, samples the gateway's CPU and RSS from /proc, and measures the
 * latency from the reading that crosses a limit to the event on the broker.
 *
 *   fleet (this process) ──MQTT QoS 1──▶ broker ──▶ gateway process ──▶ SQLite / InfluxDB
 *                        ◀──events (monitor subscriber)──────────────┘
 *
 * Scenarios:
 *   1. embedded aedes + SQLite, as fast as the gateway acknowledges (throughput, zero loss)
 *   2. Mosquitto + InfluxDB (testkit influxd), same
 *   3. embedded aedes + SQLite paced at 5,000 readings/s, one excursion per unit: p50/p99 from
 *      the publish of the reading that crosses the action limit after its delay (alarm.raised)
 *      or leaves the range (excursion.opened) to the event arriving at an MQTT subscriber.
 *
 * Writes the `## Gateway ingest (bench:ingest)` section of docs/benchmarks.md.
 * Env: BENCH_READINGS (default 1,000,000 per throughput scenario), BENCH_NO_DOC=1 (print only),
 * BENCH_ONLY=sqlite,influx,latency (a subset), BENCH_BATCH_DELAY_MS (ingest.batchMaxDelayMs),
 * BENCH_PROF=dir (--cpu-prof the gateway), BENCH_GATEWAY_FLAGS="--trace-gc …" (node flags for
 * the gateway process; its stdout is then shown), BENCH_LATENCY_ROUNDS (default 3 rounds of one
 * excursion per unit: 300 samples per event).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { decodeMessage, topicFilters } from "@coldtrace/protocol";
import { type BatchInfo, type ExcursionInjection, Fleet, type FleetOptions } from "@coldtrace/simulators";
import { freePort, mqttUrl, probes, startInfluxd } from "@coldtrace/testkit";
import { connectAsync, type MqttClient } from "mqtt";
import { stringify } from "yaml";
import { CredentialStore } from "../src/broker/credentials.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const MIN = 60_000;
const TICKS_PER_S = 100; // Linux USER_HZ for /proc/<pid>/stat

interface GatewayProcess {
  child: ChildProcess;
  brokerUrl: string;
  apiUrl: string;
  dir: string;
  monitor?: { username: string; password: string };
  agentPassword: Map<string, string>;
}

interface Result {
  scenario: string;
  readings: number;
  stored: number;
  rows: number;
  seconds: number;
  perSecond: number;
  cpuPercent: number;
  rssPeakMb: number;
  rssEndMb: number;
  latency?: { alarm: number[]; excursion: number[] };
  note?: string;
}

function stat(pid: number): { cpuTicks: number; rssBytes: number } {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = s.slice(s.lastIndexOf(")") + 2).split(" ");
  const cpuTicks = Number(fields[11]) + Number(fields[12]); // utime + stime
  const rssPages = Number(fields[21]);
  return { cpuTicks, rssBytes: rssPages * 4096 };
}

async function metric(apiUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

async function startGatewayProcess(opts: {
  agents: { agentId: string; siteId: string }[];
  sites: string[];
  external?: string;
  influx?: string;
}): Promise<GatewayProcess> {
  const dir = await mkdtemp(path.join(tmpdir(), "ct-bench-"));
  const brokerPort = await freePort();
  const apiPort = await freePort();
  const credentials = new CredentialStore();
  const agentPassword = new Map<string, string>();
  let monitor: { username: string; password: string } | undefined;
  if (!opts.external) {
    for (const a of opts.agents) {
      const { secret } = await credentials.add({
        username: a.agentId,
        role: "agent",
        siteIds: [a.siteId],
        agentId: a.agentId,
      });
      agentPassword.set(a.agentId, secret);
    }
    const m = await credentials.add({ username: "bench-monitor", role: "monitor", siteIds: ["*"] });
    monitor = { username: "bench-monitor", password: m.secret };
    await credentials.save(path.join(dir, "credentials.json"));
  }
  const config = {
    gatewayId: `bench-${randomBytes(3).toString("hex")}`,
    log: { level: "warn" },
    broker: opts.external
      ? { mode: "external", url: opts.external, persistentSession: false, subscribeSites: opts.sites }
      : { host: "127.0.0.1", port: brokerPort, credentialsFile: "credentials.json" },
    storage: {
      records: { backend: "sqlite", path: "ct.db" },
      readings: opts.influx
        ? { backend: "influx", url: opts.influx, database: "bench" }
        : { backend: "sqlite" },
    },
    api: { host: "127.0.0.1", port: apiPort },
    ...(process.env.BENCH_BATCH_DELAY_MS === undefined
      ? {}
      : { ingest: { batchMaxDelayMs: Number(process.env.BENCH_BATCH_DELAY_MS) } }),
  };
  const file = path.join(dir, "gateway.yaml");
  await writeFile(file, stringify(config));
  const prof = process.env.BENCH_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
  prof.push(...(process.env.BENCH_GATEWAY_FLAGS?.split(" ").filter(Boolean) ?? []));
  const child = spawn(
    process.execPath,
    [...prof, path.join(ROOT, "gateway/src/cli/main.ts"), "run", "--config", file],
    {
      stdio: ["ignore", process.env.BENCH_GATEWAY_FLAGS ? "inherit" : "ignore", "inherit"],
    },
  );
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${apiUrl}/health`)).ok) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error("gateway did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    brokerUrl: opts.external ?? `mqtt://127.0.0.1:${brokerPort}`,
    apiUrl,
    dir,
    ...(monitor ? { monitor } : {}),
    agentPassword,
  };
}

async function stopGatewayProcess(gw: GatewayProcess): Promise<void> {
  if (gw.child.exitCode === null) {
    const gone = new Promise((r) => gw.child.once("exit", r));
    gw.child.kill("SIGTERM");
    await gone;
  }
}

/** Wait until the gateway stored `sent` readings; give up after 15 s without progress (loss). */
async function waitStored(apiUrl: string, sent: number): Promise<{ sent: number; stored: number }> {
  let last = -1;
  let since = performance.now();
  for (;;) {
    const stored = await metric(apiUrl, "coldtrace_ingest_readings_stored_total");
    if (stored >= sent) return { sent, stored };
    if (stored !== last) {
      last = stored;
      since = performance.now();
    } else if (performance.now() - since > 15_000) {
      return { sent, stored };
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface FleetAgentId {
  agentId: string;
  siteId: string;
}

function fleetAgents(prefix: string, sites: number): FleetAgentId[] {
  return Array.from({ length: sites }, (_, i) => ({
    agentId: `${prefix}-${i + 1}-pi`,
    siteId: `${prefix}-${i + 1}`,
  }));
}

/** Sample the gateway's CPU and RSS while `work` runs. */
async function measured<T>(
  pid: number,
  work: () => Promise<T>,
): Promise<{ value: T; seconds: number; cpuPercent: number; rssPeak: number; rssEnd: number }> {
  const s0 = stat(pid);
  const self0 = process.cpuUsage();
  let rssPeak = s0.rssBytes;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, stat(pid).rssBytes);
  }, 200);
  const t0 = performance.now();
  try {
    const value = await work();
    const seconds = (performance.now() - t0) / 1000;
    const s1 = stat(pid);
    rssPeak = Math.max(rssPeak, s1.rssBytes);
    const self = process.cpuUsage(self0);
    process.stderr.write(
      `  fleet (bench process) CPU ${(((self.user + self.system) / 1e6 / seconds) * 100).toFixed(0)} %\n`,
    );
    return {
      value,
      seconds,
      cpuPercent: ((s1.cpuTicks - s0.cpuTicks) / TICKS_PER_S / seconds) * 100,
      rssPeak,
      rssEnd: s1.rssBytes,
    };
  } finally {
    clearInterval(sampler);
  }
}

async function throughput(
  name: string,
  opts: { external?: boolean; influx?: boolean; total: number },
): Promise<Result> {
  const prefix = `bench${randomBytes(3).toString("hex")}`;
  const shape = { sites: 8, units: 25, probes: 4 };
  const agents = fleetAgents(prefix, shape.sites);
  const influxd = opts.influx ? await startInfluxd() : undefined;
  const gw = await startGatewayProcess({
    agents,
    sites: agents.map((a) => a.siteId),
    ...(opts.external ? { external: mqttUrl() } : {}),
    ...(influxd ? { influx: influxd.url } : {}),
  });
  const intervalMs = 1000;
  const fleet = new Fleet({
    url: gw.brokerUrl,
    ...shape,
    sitePrefix: prefix,
    intervalMs,
    startAt: Math.floor(Date.now() / MIN) * MIN - 24 * 60 * MIN,
    batchMaxReadings: 500,
    credentials: (a) =>
      opts.external
        ? { username: a.agentId }
        : { username: a.agentId, password: gw.agentPassword.get(a.agentId) as string },
  });
  try {
    await fleet.start();
    // Let the births land before the clock starts.
    while ((await metric(gw.apiUrl, 'coldtrace_ingest_messages_total\\{kind="birth"\\}')) < shape.sites) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const stepMs = 125 * intervalMs; // 125 readings per probe per step: batches of 500 per unit
    const inflight = new Set<Promise<number>>();
    const m = await measured(gw.child.pid as number, async () => {
      const endSim =
        fleet.options.startAt +
        Math.ceil(opts.total / (shape.sites * shape.units * shape.probes)) * intervalMs;
      // End-to-end flow control, as a live fleet has: at most WINDOW readings published but not
      // yet stored. Mosquitto queues at most max_queued_messages (default 1000) per subscriber
      // and then drops QoS 1 messages; 200k readings are 400 messages of 500.
      const window = Number(process.env.BENCH_WINDOW ?? 200_000);
      let launched = 0;
      let stored = 0;
      while (fleet.simNow < endSim) {
        const from = fleet.simNow;
        const to = Math.min(from + stepMs, endSim);
        const p = fleet.advanceTo(to);
        launched += Math.round((to - from) / intervalMs) * shape.sites * shape.units * shape.probes;
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
        if (inflight.size >= Number(process.env.BENCH_INFLIGHT ?? 4)) await Promise.race(inflight);
        while (launched - stored > window) {
          stored = await metric(gw.apiUrl, "coldtrace_ingest_readings_stored_total");
          if (launched - stored > window) await new Promise((r) => setTimeout(r, 10));
        }
      }
      await Promise.all(inflight);
      return waitStored(gw.apiUrl, fleet.readingsSent);
    });
    await fleet.stop();
    await stopGatewayProcess(gw);
    let rows: number;
    if (influxd) {
      const res = await fetch(
        `${influxd.url}/query?db=bench&q=${encodeURIComponent('SELECT COUNT("seq") FROM "reading"')}`,
      );
      const body = (await res.json()) as { results: { series?: { values: [string, number][] }[] }[] };
      rows = body.results[0]?.series?.[0]?.values[0]?.[1] ?? 0;
    } else {
      const db = new DatabaseSync(path.join(gw.dir, "ct.db"), { readOnly: true });
      rows = Number((db.prepare("SELECT COUNT(*) AS n FROM readings").get() as { n: number }).n);
      db.close();
    }
    return {
      scenario: name,
      readings: m.value.sent,
      stored: m.value.stored,
      rows,
      seconds: m.seconds,
      perSecond: m.value.sent / m.seconds,
      cpuPercent: m.cpuPercent,
      rssPeakMb: m.rssPeak / 2 ** 20,
      rssEndMb: m.rssEnd / 2 ** 20,
    };
  } finally {
    await fleet.stop().catch(() => {});
    await stopGatewayProcess(gw);
    if (opts.external) {
      // Clear the fleet's retained births and states from the shared Mosquitto.
      const c = await connectAsync(mqttUrl(), { clientId: `${prefix}-cleanup` });
      for (const a of agents)
        for (const leaf of ["birth", "state"])
          await c.publishAsync(`ct/v1/${a.siteId}/agent/${a.agentId}/${leaf}`, "", { qos: 1, retain: true });
      await c.endAsync();
    }
    await influxd?.stop();
    await rm(gw.dir, { recursive: true, force: true });
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function latency(name: string, rate: number, rounds: number): Promise<Result> {
  const prefix = `lat${randomBytes(3).toString("hex")}`;
  const shape = { sites: 5, units: 20, probes: 2 };
  const intervalMs = 10_000;
  const probesTotal = shape.sites * shape.units * shape.probes;
  const speed = (rate * intervalMs) / 1000 / probesTotal;
  // One single-site fleet per agent, started a fraction of the interval apart: real agents poll
  // on their own clocks. One fleet of five sites published all 100 units in the same
  // millisecond every interval, a burst the gateway then worked through for ~17 ms of CPU, so
  // the latency measured the position of the trigger in an artificial burst.
  const agents = Array.from(
    { length: shape.sites },
    (_, i) => fleetAgents(`${prefix}s${i}`, 1)[0] as FleetAgentId,
  );
  const gw = await startGatewayProcess({ agents, sites: agents.map((a) => a.siteId) });
  const batches = new Map<string, BatchInfo[]>();
  const startAt = Math.floor(Date.now() / MIN) * MIN - 6 * 60 * MIN;
  const excursionCount = shape.sites * shape.units;
  // Rounds of one excursion per unit, a minute of simulated time apart: 3 rounds give 300
  // samples of each event, so the p99 is not just the second-worst sample.
  const roundMs = (excursionCount + 15) * MIN;
  const fleets = agents.map((_, i) => {
    const excursions: ExcursionInjection[] = [];
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < excursionCount; k++) {
        if (Math.floor(k / shape.units) !== i) continue;
        excursions.push({
          site: 0,
          unit: k % shape.units,
          afterMs: 10 * MIN + round * roundMs + k * MIN,
          durationMs: 10 * MIN,
          tempC: 14,
        });
      }
    }
    const options: FleetOptions = {
      url: gw.brokerUrl,
      ...shape,
      sites: 1,
      sitePrefix: `${prefix}s${i}`,
      intervalMs,
      startAt,
      excursions,
      credentials: (a) => ({ username: a.agentId, password: gw.agentPassword.get(a.agentId) as string }),
      onBatch: (b) => {
        const list = batches.get(b.unitId) ?? [];
        if (list.length === 0) batches.set(b.unitId, list);
        list.push(b);
      },
    };
    return new Fleet(options);
  });
  const readingsSent = () => fleets.reduce((n, f) => n + f.readingsSent, 0);
  const events: { kind: string; unitId: string; t: number; at: number }[] = [];
  let sub: MqttClient | undefined;
  try {
    sub = await connectAsync(gw.brokerUrl, { clientId: `${prefix}-monitor`, ...gw.monitor });
    sub.on("message", (topic, payload) => {
      const t = performance.now();
      const m = decodeMessage(topic, payload);
      if (m.kind === "alarm" && m.payload.type === "alarm.raised" && m.payload.tier === "action")
        events.push({ kind: "alarm", unitId: m.payload.unitId, t, at: m.payload.raisedAt });
      if (m.kind === "excursion" && m.payload.type === "excursion.opened")
        events.push({ kind: "excursion", unitId: m.payload.unitId, t, at: m.payload.startedAt });
    });
    for (const a of agents) await sub.subscribeAsync(topicFilters.events(a.siteId), { qos: 1 });
    for (const f of fleets) await f.start();
    while ((await metric(gw.apiUrl, 'coldtrace_ingest_messages_total\\{kind="birth"\\}')) < shape.sites) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const endSim = startAt + 10 * MIN + rounds * roundMs;
    const m = await measured(gw.child.pid as number, async () => {
      const phaseMs = intervalMs / speed / fleets.length;
      for (const [i, f] of fleets.entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, phaseMs));
        f.runRealtime({ speed, tickMs: Number(process.env.BENCH_TICK_MS ?? 5) });
      }
      while (fleets.some((f) => f.simNow < endSim)) await new Promise((r) => setTimeout(r, 50));
      await Promise.all(fleets.map((f) => f.stop()));
      return waitStored(gw.apiUrl, readingsSent());
    });
    const alarm: number[] = [];
    const excursion: number[] = [];
    for (const e of events) {
      // The batch that carried the first reading at or after the event time: the trigger.
      const trigger = (batches.get(e.unitId) ?? []).find((b) => b.lastObservedAt >= e.at);
      if (!trigger) continue;
      (e.kind === "alarm" ? alarm : excursion).push(e.t - trigger.publishedAtMs);
    }
    await stopGatewayProcess(gw);
    const db = new DatabaseSync(path.join(gw.dir, "ct.db"), { readOnly: true });
    const rows = Number((db.prepare("SELECT COUNT(*) AS n FROM readings").get() as { n: number }).n);
    db.close();
    return {
      scenario: name,
      readings: m.value.sent,
      stored: m.value.stored,
      rows,
      seconds: m.seconds,
      perSecond: m.value.sent / m.seconds,
      cpuPercent: m.cpuPercent,
      rssPeakMb: m.rssPeak / 2 ** 20,
      rssEndMb: m.rssEnd / 2 ** 20,
      latency: { alarm, excursion },
      note: `${rounds * excursionCount} excursions, ${speed}× simulated time`,
    };
  } finally {
    await sub?.endAsync();
    await Promise.all(fleets.map((f) => f.stop().catch(() => {})));
    await stopGatewayProcess(gw);
    await rm(gw.dir, { recursive: true, force: true });
  }
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function render(results: Result[], notes: string[]): string {
  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim();
  const cpu = os.cpus();
  const lines = [
    "## Gateway ingest (bench:ingest)",
    "",
    `Machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, ${fmt(os.totalmem() / 2 ** 30, 1)} GiB RAM, Node ${process.version}, ` +
      `${new Date().toISOString().slice(0, 10)}, commit ${commit}. The gateway runs as its own process ` +
      "(`coldtrace-gateway run`); the fleet generator publishes from the bench process on the same two cores.",
    "",
    "| Scenario | Readings | Stored rows | Loss | Wall s | Readings/s | Gateway CPU | Gateway RSS peak / end |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    lines.push(
      `| ${r.scenario} | ${fmt(r.readings)} | ${fmt(r.rows)} | ${fmt(r.readings - r.rows)} | ${fmt(r.seconds, 1)} | ${fmt(r.perSecond)} | ${fmt(r.cpuPercent)} % | ${fmt(r.rssPeakMb)} / ${fmt(r.rssEndMb)} MB |`,
    );
  }
  const lat = results.filter((r) => r.latency);
  if (lat.length > 0) {
    lines.push(
      "",
      "Latency from publishing the reading that triggers the event (crossing the action limit after its",
      "delay for `alarm.raised`; leaving the range for `excursion.opened`) to the event arriving at an MQTT",
      "subscriber (same clock, bench process):",
      "",
      "| Scenario | Event | Samples | p50 ms | p99 ms | max ms |",
      "|---|---|---:|---:|---:|---:|",
    );
    for (const r of lat) {
      for (const [kind, values] of [
        ["alarm.raised (action)", r.latency?.alarm ?? []],
        ["excursion.opened", r.latency?.excursion ?? []],
      ] as const) {
        lines.push(
          `| ${r.scenario} | ${kind} | ${values.length} | ${fmt(percentile(values, 50), 1)} | ${fmt(percentile(values, 99), 1)} | ${fmt(Math.max(...values), 1)} |`,
        );
      }
    }
  }
  const verdict = (ok: boolean) => (ok ? "met" : "**missed**");
  const sqlite = results.find((r) => r.scenario.startsWith("embedded aedes + SQLite") && !r.latency);
  const influx = results.find((r) => r.scenario.startsWith("Mosquitto"));
  const paced = results.find((r) => r.latency);
  lines.push("", "Targets on this machine:");
  if (sqlite)
    lines.push(
      `- ≥ 100,000 readings/s embedded + SQLite: ${fmt(sqlite.perSecond)} — ${verdict(sqlite.perSecond >= 100_000)}.`,
    );
  if (influx)
    lines.push(
      `- ≥ 50,000 readings/s Mosquitto + InfluxDB: ${fmt(influx.perSecond)} — ${verdict(influx.perSecond >= 50_000)}.`,
    );
  if (paced?.latency) {
    const p99 = Math.max(percentile(paced.latency.alarm, 99), percentile(paced.latency.excursion, 99));
    lines.push(`- p99 ≤ 10 ms at 5,000 readings/s: ${fmt(p99, 1)} ms — ${verdict(p99 <= 10)}.`);
  }
  lines.push(
    "",
    "Zero loss is checked by counting rows after the gateway stopped (SQLite `COUNT(*)`, InfluxDB",
    "`COUNT(seq)`). The throughput runs use end-to-end flow control (at most 200,000 readings",
    "published but not yet stored, what a fleet's outboxes give in practice): without it, a",
    "subscriber that falls behind on Mosquitto loses QoS 1 messages once `max_queued_messages`",
    "(default 1000) is reached. The latency run has one fleet per agent, each on its own phase (a",
    "fifth of the reading interval apart), ticking every 5 ms of wall time; one excursion per unit",
    "per round, three rounds.",
    "The trigger time is taken just before the publish call, which writes to the socket",
    "synchronously; the bench process itself uses ~15 % CPU, so it is not the bottleneck.",
  );
  lines.push("", ...ANALYSIS);
  if (notes.length > 0) lines.push("", ...notes);
  return `${lines.join("\n")}\n`;
}

/** Interpretation of the last committed figures; update it with them. */
const ANALYSIS = [
  "Honest reading: figures vary between runs on these two shared cores (other engineers' tests",
  "often run alongside). Earlier runs, on a 2-core AMD EPYC machine and before the checkpoint",
  "fix below, gave 77,000\u2013128,000 readings/s (embedded + SQLite) and 51,000\u201369,000",
  "(Mosquitto + InfluxDB); this run had its machine to itself. The gateway sends",
  "an agent message's PUBACK only after its readings are committed, with either broker.",
  "",
  "Event latency, how the target was reached. The first runs gave p99 47\u201376 ms: one fleet",
  "published all 100 units in the same millisecond, and the figure was the trigger's place in",
  "that burst; the bench now runs one fleet per agent on its own phase, as real agents poll.",
  "Then, in turn: events no longer wait for each other's PUBACK; WAL checkpoints moved to a",
  "worker thread; the embedded broker hands agent data to ingest in process. That left p99",
  "16\u201325 ms. Timing each ingest step inside the gateway then showed one commit in about",
  "twenty taking 5\u20138 ms, once every ~190 ms, whatever the checkpointer's interval and even",
  "with its fsync off: SQLite's own auto-checkpoint, which the writer still ran inside its COMMIT",
  "whenever the WAL passed 1000 pages between two checkpoints of the worker. The writer's",
  "auto-checkpoint is now off while the checkpointer runs (every 50 ms) and comes back if it",
  "stops (gateway/src/ingest/checkpointer.ts). Commits are now p99 1.3 ms, max ~5 ms. With 300",
  "samples per event, eight runs gave p99 6.2\u201310.2 ms (the 10.2 once, for alarm.raised; every",
  "other figure 9.6 or below). The WAL file peaked at 30 MB in the 1,000,000-reading run, and",
  "throughput rose, since the writer no longer copies pages back either.",
  "",
  "What is left of the tail: the event reaches the subscriber through the gateway's own MQTT",
  "client and aedes on the event loop that also acknowledges the agents (median ~1.5 ms of the",
  "2.7), and V8 scavenges of 3\u20135 ms about once a second. Publishing straight into aedes in",
  "process moved p50 by 0.5 ms and the p99 not at all, so the gateway stays a plain MQTT client",
  "of its broker. The max (13\u201325 ms) is a rare pause of the whole process.",
];

function writeSection(section: string): void {
  const file = path.join(ROOT, "docs/benchmarks.md");
  const doc = readFileSync(file, "utf8");
  const heading = "## Gateway ingest (bench:ingest)";
  const start = doc.indexOf(heading);
  let next: string;
  if (start === -1) {
    next = `${doc.trimEnd()}\n\n${section}`;
  } else {
    const after = doc.indexOf("\n## ", start + heading.length);
    next = doc.slice(0, start) + section + (after === -1 ? "" : `\n${doc.slice(after + 1)}`);
  }
  writeFileSync(file, next);
}

const total = Number(process.env.BENCH_READINGS ?? 1_000_000);
const only = process.env.BENCH_ONLY;
const results: Result[] = [];
const notes: string[] = [];
const run = async (key: string, f: () => Promise<Result>) => {
  if (only && !only.split(",").includes(key)) return;
  process.stderr.write(`bench:ingest ${key}…\n`);
  const r = await f();
  process.stderr.write(`${JSON.stringify({ ...r, latency: undefined })}\n`);
  results.push(r);
};
await run("sqlite", () => throughput("embedded aedes + SQLite", { total }));
const mosq = await probes.mosquitto();
const influx = await probes.influxd();
if (mosq.available && influx.available) {
  await run("influx", () => throughput("Mosquitto + InfluxDB 1.6", { external: true, influx: true, total }));
} else {
  notes.push(`Mosquitto + InfluxDB skipped: ${mosq.reason || influx.reason}.`);
}
const rounds = Number(process.env.BENCH_LATENCY_ROUNDS ?? 3);
await run("latency", () => latency("embedded aedes + SQLite, paced 5,000 readings/s", 5000, rounds));
const section = render(results, notes);
process.stdout.write(section);
if (!process.env.BENCH_NO_DOC && !only) writeSection(section);
