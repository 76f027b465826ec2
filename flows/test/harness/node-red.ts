/**
 * Start a real Node-RED 5 (./node-red-child.ts) with a flow file from this package, its
 * broker credentials in flows_cred.json (plain: credentialSecret false, tests only) and the
 * environment variables the flow reads. Restartable on the same user directory.
 */
import { type ChildProcess, fork } from "node:child_process";
import { copyFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const flowsDir = path.resolve(here, "../..");

export interface NodeRedOptions {
  userDir: string;
  /** Flow file of this package, e.g. "escalation/flows.json". Copied on first start only. */
  flow: string;
  /** Node credentials by node id (e.g. the mqtt-broker's user and password). */
  credentials?: Record<string, Record<string, string>>;
  env: Record<string, string>;
  /** Test clock start (epoch ms); absent: the Coldtrace nodes use the system clock. */
  clockStart?: number;
}

export interface NodeRed {
  adminUrl: string;
  /** Base URL of the flows' HTTP endpoints. */
  url: string;
  logs: string[];
  setClock(t: number): Promise<void>;
  /** Orderly stop (RED.stop). */
  stop(): Promise<void>;
  waitForLog(re: RegExp): Promise<string>;
}

export async function writeFlow(opts: NodeRedOptions): Promise<void> {
  await copyFile(path.join(flowsDir, opts.flow), path.join(opts.userDir, "flows.json"));
  await writeFile(path.join(opts.userDir, "flows_cred.json"), JSON.stringify(opts.credentials ?? {}));
}

export async function startNodeRed(opts: NodeRedOptions): Promise<NodeRed> {
  const child: ChildProcess = fork(path.join(here, "node-red-child.ts"), [], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: opts.userDir,
      ...opts.env,
      CT_NODE_RED_CHILD: JSON.stringify({
        userDir: opts.userDir,
        ...(opts.clockStart === undefined ? {} : { clockStart: opts.clockStart }),
      }),
    },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  const logs: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (line: string) => void }> = [];
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line.trim() === "") continue;
      logs.push(line);
      if (process.env.CT_NODE_RED_LOG) console.error(`[node-red] ${line}`);
      for (const w of waiters.splice(0)) {
        if (w.re.test(line)) w.resolve(line);
        else waiters.push(w);
      }
    }
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const ready = await new Promise<{ adminUrl: string; url: string }>((resolve, reject) => {
    child.on("message", (m: { ready?: boolean; adminUrl?: string; url?: string }) => {
      if (m.ready) resolve({ adminUrl: m.adminUrl!, url: m.url! });
    });
    void exited.then((code) =>
      reject(new Error(`Node-RED exited (${code}) before it was ready:\n${logs.join("\n")}`)),
    );
  });
  return {
    ...ready,
    logs,
    setClock: (t) =>
      new Promise<void>((resolve) => {
        const on = (m: { clockSet?: number }) => {
          if (m.clockSet === t) {
            child.off("message", on);
            resolve();
          }
        };
        child.on("message", on);
        child.send({ clock: t });
      }),
    async stop() {
      if (child.exitCode !== null) return;
      child.send({ stop: true });
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
    waitForLog(re) {
      const seen = logs.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ re, resolve }));
    },
  };
}
