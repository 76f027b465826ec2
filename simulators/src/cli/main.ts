#!/usr/bin/env node
/**
 * coldtrace-sim — run a probe simulator from the command line to rehearse a deployment.
 *
 *   coldtrace-sim rtu   --port /dev/pts/5 [--baud 9600] [--parity none] [--turnaround 5] --scenario file.yaml
 *   coldtrace-sim tcp   [--listen 1502] [--host 0.0.0.0] --scenario file.yaml
 *   coldtrace-sim ascii --port /dev/pts/7 [--baud 9600] --scenario file.yaml
 *   coldtrace-sim fleet --url mqtt://127.0.0.1:1883 [--sites 3 --units 4 --probes 2 --speed 60 …]
 *   coldtrace-sim planner [--url …] [--site …] [--username … --password …]
 *
 * Make a PTY pair first: socat -d -d pty,raw,echo=0,link=/tmp/agent pty,raw,echo=0,link=/tmp/sim
 * then point the agent at /tmp/agent and the simulator at /tmp/sim.
 */
import { parseArgs } from "node:util";
import { isColdtraceError } from "@coldtrace/protocol";
import { fleetCommand } from "../fleet/index.ts";
import { startAsciiProbe } from "../probes/ascii.ts";
import { startRtuSlave } from "../probes/rtu.ts";
import { loadScenario, type Scenario, scenarioSchema } from "../probes/scenario.ts";
import { startTcpSlave } from "../probes/tcp.ts";

const usage = `usage:
  coldtrace-sim rtu   --port <tty> [--baud 9600] [--parity none|even|odd] [--turnaround <ms>] [--scenario <file.yaml>]
  coldtrace-sim tcp   [--listen 1502] [--host 127.0.0.1] [--turnaround <ms>] [--scenario <file.yaml>]
  coldtrace-sim ascii --port <tty> [--baud 9600] [--interval <ms>] [--scenario <file.yaml>]
  coldtrace-sim fleet --url <mqtt url> [--sites 3] [--units 4] [--probes 2] [--speed 60] (--help for more)
  coldtrace-sim planner [--url <mqtt url>] [--site <id>] [--username <u> --password <p>]
Scenarios: simulators/scenarios/*.yaml (see docs/technician/simulators.md).`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    console.log(usage);
    return 0;
  }
  const [mode, ...rest] = argv;
  if (mode === "fleet") return fleetCommand(rest);
  if (mode === "planner") {
    process.argv.splice(2, 1); // the planner reads its options from process.argv
    await import("../planner/main.ts");
    return new Promise<number>(() => {}); // runs until SIGINT/SIGTERM; main.ts exits itself
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      port: { type: "string" },
      baud: { type: "string", default: "9600" },
      parity: { type: "string", default: "none" },
      turnaround: { type: "string", default: "0" },
      scenario: { type: "string" },
      listen: { type: "string", default: "1502" },
      host: { type: "string", default: "127.0.0.1" },
      interval: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !mode || !["rtu", "tcp", "ascii"].includes(mode)) {
    console.error(usage);
    return values.help ? 0 : 2;
  }
  const scenario: Scenario = values.scenario
    ? await loadScenario(values.scenario)
    : scenarioSchema.parse({ slaves: [{ id: 1, channels: [{ register: 0 }] }] });
  const baudRate = Number(values.baud);
  const turnaroundMs = Number(values.turnaround);
  const parity = values.parity as "none" | "even" | "odd";
  const ids = scenario.slaves.map((s) => s.id).join(", ");
  let close: () => Promise<void>;
  if (mode === "rtu" || mode === "ascii") {
    if (!values.port) {
      console.error(`--port is required for ${mode}\n${usage}`);
      return 2;
    }
    if (mode === "rtu") {
      const sim = await startRtuSlave({ path: values.port, baudRate, parity, scenario, turnaroundMs });
      console.log(
        `modbus rtu slaves [${ids}] on ${values.port} at ${baudRate} baud, scenario ${scenario.name}`,
      );
      close = sim.close;
    } else {
      const sim = await startAsciiProbe({
        path: values.port,
        baudRate,
        scenario,
        ...(values.interval ? { intervalMs: Number(values.interval) } : {}),
      });
      console.log(`ascii probe on ${values.port}, scenario ${scenario.name}`);
      close = sim.close;
    }
  } else {
    const sim = await startTcpSlave({
      port: Number(values.listen),
      host: values.host,
      scenario,
      turnaroundMs,
    });
    console.log(`modbus tcp slaves [${ids}] on ${values.host}:${sim.port}, scenario ${scenario.name}`);
    close = sim.close;
  }
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await close();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(isColdtraceError(err) ? err.message : err);
    process.exit(1);
  },
);
