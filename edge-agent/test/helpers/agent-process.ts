/**
 * The real agent as a child process (`coldtrace-agent run`), from the TypeScript sources or
 * from the deployed bundle: its JSON log lines (stdout) are parsed as they come, so a test can
 * wait for a log event instead of sleeping; stderr is kept whole.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
const BUNDLE = new URL("../../build/coldtrace-agent.mjs", import.meta.url).pathname;

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface AgentProcess {
  child: ChildProcess;
  /** Every JSON log line so far. */
  logs: LogLine[];
  /** stdout lines that were not JSON, verbatim. */
  rawLines: string[];
  stderr(): string;
  /** Resolves with the first log line (from `from` on) that satisfies `match`. */
  waitForLog(
    match: (l: LogLine) => boolean,
    what: string,
    timeoutMs?: number,
    from?: number,
  ): Promise<LogLine>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

/** Builds edge-agent/build/coldtrace-agent.mjs (esbuild, about a second). */
export function buildBundle(): string {
  execFileSync(process.execPath, [new URL("../../deploy/build.ts", import.meta.url).pathname]);
  return BUNDLE;
}

export function startAgentProcess(
  configFile: string,
  opts: { bundle?: boolean; env?: NodeJS.ProcessEnv; args?: string[] } = {},
): AgentProcess {
  const entry = opts.bundle ? BUNDLE : MAIN;
  const child = spawn(process.execPath, [entry, "run", "--config", configFile, ...(opts.args ?? [])], {
    stdio: ["ignore", "pipe", "pipe"],
    env: opts.env ?? process.env,
  });
  const logs: LogLine[] = [];
  const rawLines: string[] = [];
  let stderr = "";
  let partial = "";
  const waiters = new Set<() => void>();
  child.stdout?.on("data", (d: Buffer) => {
    partial += String(d);
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      if (line.trim() === "") continue;
      rawLines.push(line);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        // not a log line
      }
    }
    for (const w of [...waiters]) w();
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr += String(d);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    logs,
    rawLines,
    stderr: () => stderr,
    waitForLog(match, what, timeoutMs = 20_000, from = 0) {
      return new Promise<LogLine>((resolve, reject) => {
        const check = () => {
          const hit = logs.slice(from).find(match);
          if (!hit) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}; stderr: ${stderr.slice(-500)}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      return exited;
    },
    async kill9() {
      if (child.exitCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}
