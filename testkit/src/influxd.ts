/**
 * Start a throwaway `influxd` (InfluxDB 1.x) on spare loopback ports with a temporary config and
 * data folder, for storage tests. Stopped and deleted by `stop()`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ColdtraceError } from "@coldtrace/protocol";
import { freePort } from "./ports.ts";
import { influxdBinary } from "./services.ts";

export interface InfluxdHandle {
  url: string;
  host: string;
  port: number;
  stop(): Promise<void>;
}

export async function startInfluxd(options: { timeoutMs?: number } = {}): Promise<InfluxdHandle> {
  const dir = await mkdtemp(path.join(tmpdir(), "ct-influxd-"));
  const httpPort = await freePort();
  const rpcPort = await freePort();
  const config = `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${dir}/meta"
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "10s"
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  log-enabled = false
  flux-enabled = false
[logging]
  level = "warn"
[continuous_queries]
  enabled = true
`;
  const configPath = path.join(dir, "influxdb.conf");
  await writeFile(configPath, config);
  const child: ChildProcess = spawn(influxdBinary(), ["run", "-config", configPath], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  const url = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (exited) {
      await rm(dir, { recursive: true, force: true });
      throw new ColdtraceError(
        "CT_SERVICE_MISSING",
        `influxd exited during start-up: ${stderr.trim().slice(-500)}`,
      );
    }
    try {
      const res = await fetch(`${url}/ping`);
      if (res.status === 204) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
      throw new ColdtraceError("CT_SERVICE_MISSING", `influxd did not answer /ping on ${url}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    host: "127.0.0.1",
    port: httpPort,
    async stop() {
      if (!exited) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
        if (!exited) child.kill("SIGKILL");
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
