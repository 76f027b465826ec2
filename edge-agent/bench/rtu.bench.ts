/**
 * bench:rtu — Modbus RTU polls per second through the agent's own driver (modbus-serial on
 * the agent's RTU line port, block planning, decoding) over a socat PTY pair to the RTU simulator, which
 * models wire time at the configured baud. Result as a fraction of the line's theoretical
 * limit (simulators' rtuPollLimit). Target ≥ 90 %.
 *
 *   npm run bench:rtu            prints a markdown table and writes it into docs/benchmarks.md
 *   BENCH_SECONDS=2 npm run bench:rtu   shorter runs
 *
 * The docs section `## Modbus RTU polling (bench:rtu)` is replaced; other sections are kept.
 */
import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { rtuPollLimit, startRtuSlave } from "@coldtrace/simulators";
import { openPtyPair } from "@coldtrace/testkit";
import pino from "pino";
import { busesSchema, type ModbusRtuBusConfig } from "../src/config/buses.ts";
import { createModbusDriver } from "../src/drivers/modbus.ts";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const docsFile = path.join(import.meta.dirname, "../../docs/benchmarks.md");
const HEADING = "## Modbus RTU polling (bench:rtu)";

interface Row {
  baudRate: number;
  registers: number;
  polls: number;
  pollsPerS: number;
  limit: number;
  errors: number;
}

async function run(baudRate: number, registers: number): Promise<Row> {
  const pty = await openPtyPair();
  const channels = Array.from({ length: registers }, (_, i) => ({ register: i, baseC: 5, noiseC: 0.2 }));
  const sim = await startRtuSlave({ path: pty.b, baudRate, slaves: [{ id: 1, channels }] });
  const [bus] = busesSchema.parse([
    {
      id: "bench",
      type: "modbus-rtu",
      port: pty.a,
      baudRate,
      timeoutMs: 500,
      retries: 0,
      probes: channels.map((c) => ({
        id: `p${c.register}`,
        unit: "bench",
        slaveId: 1,
        register: c.register,
        scale: 0.1,
      })),
    },
  ]) as [ModbusRtuBusConfig];
  const driver = createModbusDriver(bus, pino({ level: "silent" }));
  await driver.open();
  try {
    // Warm-up, then count complete polls (one block read, every probe decoded) for `seconds`.
    for (let i = 0; i < 5; i++) await driver.read(bus.probes);
    let polls = 0;
    let errors = 0;
    const start = performance.now();
    const end = start + seconds * 1000;
    while (performance.now() < end) {
      const reads = await driver.read(bus.probes);
      if (reads.some((r) => r.quality === "comm_error")) errors++;
      else polls++;
    }
    const elapsedS = (performance.now() - start) / 1000;
    // Request: id, fc, addr(2), qty(2), crc(2) = 8; reply: id, fc, count, 2n data, crc(2).
    return {
      baudRate,
      registers,
      polls,
      pollsPerS: polls / elapsedS,
      limit: rtuPollLimit(baudRate, 8, 5 + 2 * registers),
      errors,
    };
  } finally {
    await driver.close();
    await sim.close();
    await pty.close();
  }
}

function cpuModel(): string {
  return os.cpus()[0]?.model.trim() ?? "unknown";
}

function nproc(): string {
  try {
    return execFileSync("nproc", { encoding: "utf8" }).trim();
  } catch {
    return String(os.availableParallelism());
  }
}

function commit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

const rows: Row[] = [];
for (const baudRate of [9600, 19_200]) {
  for (const registers of [1, 8]) rows.push(await run(baudRate, registers));
}

const table = [
  "| Baud | Registers per poll | Polls | Polls/s | Line limit (polls/s) | Of limit | Errors |",
  "|---:|---:|---:|---:|---:|---:|---:|",
  ...rows.map(
    (r) =>
      `| ${r.baudRate} | ${r.registers} | ${r.polls} | ${r.pollsPerS.toFixed(1)} | ${r.limit.toFixed(1)} | ${((r.pollsPerS / r.limit) * 100).toFixed(1)} % | ${r.errors} |`,
  ),
].join("\n");

const section = `${HEADING}

Agent driver (modbus-serial on the agent's RTU line port, block read + decode) polling one slave back to back over a
socat PTY pair; the RTU simulator models wire time (11 bits/char, t3.5 before and after each
reply, no turnaround). Line limit = 1 / ((8 + 5 + 2n) × 11 / baud + 2 × t3.5). Target ≥ 90 %.
${seconds} s per row.

${table}

Machine: ${nproc()} CPUs, ${cpuModel()}, Node ${process.version}, ${os.platform()} ${os.release()}.
Date: ${new Date().toISOString().slice(0, 10)}, commit ${commit()}.
`;

console.log(table);

let doc = "";
try {
  doc = await readFile(docsFile, "utf8");
} catch {
  doc = "# Benchmarks\n";
}
const startAt = doc.indexOf(HEADING);
if (startAt >= 0) {
  const next = doc.indexOf("\n## ", startAt + HEADING.length);
  doc = `${doc.slice(0, startAt)}${section}${next >= 0 ? `\n${doc.slice(next + 1)}` : ""}`;
} else {
  doc = `${doc.trimEnd()}\n\n${section}`;
}
await writeFile(docsFile, doc);
console.log(`written to ${path.relative(process.cwd(), docsFile)}`);
