#!/usr/bin/env node
/**
 * `coldtrace-agent`: the agent's entry point and the only code that exits.
 *
 *   coldtrace-agent run          [--config FILE]   poll, store, publish (systemd runs this)
 *   coldtrace-agent check-config [--config FILE]   validate and summarise; exit 2 when invalid
 *   coldtrace-agent status       [--config FILE | --outbox FILE] [--json]
 *   coldtrace-agent scan | read  ...               commissioning (cli/commission.ts)
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage. Configuration problems
 * are printed as the whole list, never as a stack trace (zigbee2mqtt's onboarding habit).
 * The root pino logger is created here and logs JSON to stdout (journald keeps it); every
 * component gets a child logger with its own level.
 */
import { parseArgs } from "node:util";
import { type AgentClock, isColdtraceError } from "@coldtrace/protocol";
import pino, { type Logger } from "pino";
import { AGENT_VERSION, systemdNotifier } from "../agent/index.ts";
import { type AgentConfig, loadConfig, loadConfigFile } from "../config/index.ts";
import { readOutboxSnapshot } from "../outbox/index.ts";
import { Supervisor, type SupervisorDeps } from "../remote/index.ts";

const DEFAULT_CONFIG = process.env.COLDTRACE_AGENT_CONFIG ?? "/etc/coldtrace/agent.yaml";

const USAGE = `coldtrace-agent ${AGENT_VERSION}

Usage:
  coldtrace-agent run          [--config FILE]
  coldtrace-agent check-config [--config FILE]
  coldtrace-agent status       [--config FILE | --outbox FILE] [--json]
  coldtrace-agent scan         ...   (probe discovery on a bus)
  coldtrace-agent read         ...   (read one probe now)

--config defaults to $COLDTRACE_AGENT_CONFIG or ${DEFAULT_CONFIG}.
`;

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

const stdio: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** A configuration problem printed as the whole list (exit code 2); undefined for anything else. */
function reportConfigError(err: unknown, io: Io): number | undefined {
  if (isColdtraceError(err, "CT_CFG_INVALID") || isColdtraceError(err, "CT_CFG_UNREADABLE")) {
    io.err(`${err.message.trimEnd()}\n`);
    return 2;
  }
  return undefined;
}

function loadOrReport(file: string, io: Io): AgentConfig | number {
  try {
    return loadConfig(file);
  } catch (err) {
    const code = reportConfigError(err, io);
    if (code !== undefined) return code;
    throw err;
  }
}

function checkConfig(file: string, io: Io): number {
  const cfg = loadOrReport(file, io);
  if (typeof cfg === "number") return cfg;
  const probes = cfg.buses.reduce((n, b) => n + b.probes.length, 0);
  io.out(
    `${file}: OK\n` +
      `  agent ${cfg.agent.id} at site ${cfg.agent.siteId}, broker ${cfg.mqtt.url}\n` +
      `  ${cfg.units.length} unit(s), ${cfg.buses.length} bus(es), ${probes} probe(s)\n` +
      `  outbox ${cfg.outbox.path}: up to ${cfg.outbox.maxReadings} readings, synchronous=${cfg.outbox.synchronous}\n` +
      `  local alarm: ${cfg.localAlarm.enabled ? `${cfg.localAlarm.outputs.length} relay output(s)` : "disabled"}\n`,
  );
  return 0;
}

function ago(ms: number | null | undefined, now: number): string {
  if (ms === null || ms === undefined) return "never";
  const s = Math.round((now - ms) / 1000);
  const human = s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
  return `${new Date(ms).toISOString()} (${human} ago)`;
}

function alive(pid: unknown): boolean {
  if (typeof pid !== "number") return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

interface ProbeRow {
  probeId: string;
  unitId: string;
  consecutiveFailures: number;
  calibrationOverdue: boolean;
  faults: Record<string, number>;
  lastOkAt: number | null;
}

function status(outboxPath: string, json: boolean, io: Io): number {
  let snap: ReturnType<typeof readOutboxSnapshot>;
  try {
    snap = readOutboxSnapshot(outboxPath);
  } catch (err) {
    io.err(`${(err as Error).message}\n`);
    return 1;
  }
  const now = Date.now();
  const v = (key: string) => snap.status[key]?.value;
  const pid = v("pid");
  const running = alive(pid);
  if (json) {
    io.out(`${JSON.stringify({ running, ...snap }, null, 2)}\n`);
    return 0;
  }
  const probes = (v("probes") as ProbeRow[] | undefined) ?? [];
  const faulted = probes.filter((p) => p.consecutiveFailures > 0);
  const lines = [
    `agent         ${running ? `running (pid ${pid})` : "not running"}; status written ${ago(snap.status.pid?.updatedAt, now)}`,
    `mqtt          ${v("connected") ? `connected, session ${v("sessionId")}` : "not connected"}; gateway listening: ${
      v("gatewayListening") === null || v("gatewayListening") === undefined
        ? "unknown"
        : v("gatewayListening")
          ? "yes"
          : "NO"
    }`,
    `outbox        ${snap.depth} reading(s) waiting, ${snap.gapDepth} gap record(s) waiting, ${snap.evictedTotal} evicted in total, next seq ${snap.nextSeq}`,
    `oldest unsent ${ago(snap.oldestObservedAt, now)}`,
    `last publish  ${ago(v("lastPublishAt") as number | null, now)}`,
    `probes        ${probes.length}, ${faulted.length} faulted`,
    ...probes.map((p) => {
      const counts = Object.entries(p.faults)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ");
      const state = p.consecutiveFailures > 0 ? `FAULT (${p.consecutiveFailures} consecutive)` : "ok";
      return `  ${p.probeId.padEnd(24)} ${p.unitId.padEnd(16)} ${state}${counts ? `; ${counts}` : ""}${
        p.calibrationOverdue ? "; CALIBRATION OVERDUE" : ""
      }; last ok ${ago(p.lastOkAt, now)}`;
    }),
    `local alarms  ${((v("alarms") as string[] | undefined) ?? []).join(", ") || "none"}`,
    clockLine(v("clock") as AgentClock | null | undefined, now),
  ];
  io.out(`${lines.join("\n")}\n`);
  return 0;
}

function clockLine(c: AgentClock | null | undefined, now: number): string {
  if (!c) return "clock         unknown";
  const jump = c.lastJump
    ? `; last jump ${c.lastJump.deltaMs > 0 ? "+" : ""}${(c.lastJump.deltaMs / 1000).toFixed(1)} s at ${new Date(c.lastJump.at).toISOString()}`
    : "";
  const waiting =
    c.untrustedPending > 0 ? `; ${c.untrustedPending} reading(s) with an untrusted time waiting` : "";
  return `clock         ${c.state === "synchronised" ? "synchronised" : c.state === "unsynchronised" ? "NOT SYNCHRONISED" : "sync unknown"} (${c.source})${c.since ? `, since ${ago(c.since, now)}` : ""}${jump}${waiting}`;
}

function rootLogger(cfg: AgentConfig): Logger {
  // The root must let through the most verbose component level; each child narrows its own.
  const order = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];
  const levels = [cfg.logging.level, ...Object.values(cfg.logging.components)];
  const level = levels.reduce((a, b) => (order.indexOf(b) < order.indexOf(a) ? b : a));
  const root = pino({ level, base: { agentId: cfg.agent.id }, timestamp: pino.stdTimeFunctions.isoTime });
  return root.child({}, { level: cfg.logging.level });
}

async function run(file: string, io: Io): Promise<number> {
  let loaded: ReturnType<typeof loadConfigFile>;
  try {
    loaded = loadConfigFile(file);
  } catch (err) {
    const code = reportConfigError(err, io);
    if (code !== undefined) return code;
    throw err;
  }
  const cfg = loaded.config;
  const log = rootLogger(cfg);
  let makeAcquisition: SupervisorDeps["makeAcquisition"];
  try {
    // Loaded only by `run`, so check-config and status never open serial ports or load drivers.
    const mod = await import("../acquisition/index.ts");
    makeAcquisition = (config) => {
      const level = config.logging.components.acquisition;
      return mod.createAcquisition(config.buses, {
        log: level
          ? log.child({ component: "acquisition" }, { level })
          : log.child({ component: "acquisition" }),
      });
    };
  } catch (err) {
    log.fatal({ err }, "acquisition not available");
    return 1;
  }
  // The supervisor runs the agent with the file's configuration, or with the configuration the
  // gateway pushed (remote configuration), and switches between them.
  const supervisor = new Supervisor({
    file,
    fileConfig: cfg,
    fileDocument: loaded.document,
    makeAcquisition,
    log,
  });
  const systemd = systemdNotifier(log);
  try {
    await supervisor.start();
  } catch (err) {
    log.fatal({ err }, "agent failed to start");
    io.err(`${(err as Error).message}\n`);
    return 1;
  }
  systemd.ready(`agent ${cfg.agent.id} running`);
  systemd.startWatchdog();
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "stopping");
      systemd.stopping();
      supervisor.stop().then(
        () => {
          systemd.close();
          resolve(0);
        },
        (err: unknown) => {
          log.error({ err }, "stop failed");
          systemd.close();
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
}

async function commission(command: "scan" | "read", args: string[]): Promise<number> {
  // Loaded only for these commands: they open serial ports and Modbus clients.
  const { scanCommand, readCommand } = await import("./commission.ts");
  return command === "scan" ? scanCommand(args, process.stdout) : readCommand(args, process.stdout);
}

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "scan" || command === "read") return commission(command, rest);
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    io.out(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === "--version") {
    io.out(`${AGENT_VERSION}\n`);
    return 0;
  }
  let values: { config?: string; outbox?: string; json?: boolean };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        config: { type: "string", short: "c" },
        outbox: { type: "string" },
        json: { type: "boolean" },
      },
      strict: true,
    }));
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const file = values.config ?? DEFAULT_CONFIG;
  switch (command) {
    case "run":
      return run(file, io);
    case "check-config":
      return checkConfig(file, io);
    case "status": {
      if (values.outbox) return status(values.outbox, values.json === true, io);
      const cfg = loadOrReport(file, io);
      if (typeof cfg === "number") return cfg;
      return status(cfg.outbox.path, values.json === true, io);
    }
    default:
      io.err(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`coldtrace-agent: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
