/**
 * A gateway on a free port with SQLite in a temp folder, agent accounts, and helpers to wait
 * for events (never for time). Shared by the ingest, API and end-to-end suites.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { connectAsync, type MqttClient } from "mqtt";
import pino from "pino";
import { type GatewayRuntime, type StartGatewayOptions, startGateway } from "../../src/app/gateway.ts";
import { openStorage } from "../../src/app/storage.ts";
import { CredentialStore } from "../../src/broker/credentials.ts";
import { builtinExtensions } from "../../src/cli/builtins.ts";
import { parseGatewayConfig } from "../../src/config/load.ts";
import type { GatewayConfigInput } from "../../src/config/schema.ts";
import type { ExtensionFactory } from "../../src/extension/extension.ts";
import type { EnginePort, UnitRegistration } from "../../src/ingest/ports.ts";
import type { DomainEvent } from "../../src/kernel/events.ts";
import { lotsExtension } from "../../src/lots/module.ts";
import type { StoredReading } from "../../src/storage/types.ts";

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface Harness {
  gw: GatewayRuntime;
  dir: string;
  logs: LogLine[];
  secrets: Record<string, string>;
  agent(agentId: string): Promise<MqttClient>;
  subscriber(): Promise<MqttClient>;
  close(): Promise<void>;
}

/** Resolve when `pred` holds; checks on every macrotask turn, gives up after `timeoutMs`. */
export async function until(pred: () => boolean | Promise<boolean>, what = "condition", timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** `coldtrace-gateway run --config file` as a child process, resolved once its API answers /health. */
export async function spawnGatewayProcess(configFile: string, apiPort: number): Promise<ChildProcess> {
  const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
  const c = spawn(process.execPath, [main, "run", "--config", configFile], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  await until(async () => {
    if (c.exitCode !== null) throw new Error(`gateway exited with ${c.exitCode}`);
    try {
      return (await fetch(`http://127.0.0.1:${apiPort}/health`)).ok;
    } catch {
      return false;
    }
  }, "gateway up");
  return c;
}

/**
 * A minimal engine at the seam (the real one is tested in test/excursions): raises one
 * temperature alarm per unit at the first ok reading above 8 °C, acknowledges it on request.
 */
export function thresholdEngine(): EnginePort & {
  units: Map<string, UnitRegistration>;
  seen: StoredReading[];
} {
  const units = new Map<string, UnitRegistration>();
  const seen: StoredReading[] = [];
  const alarms = new Map<string, DomainEvent & { type: "alarm" }>();
  return {
    units,
    seen,
    registerUnit(u) {
      units.set(u.unitId, u);
    },
    ingest(readings) {
      const out: DomainEvent[] = [];
      for (const r of readings) {
        seen.push(r);
        const id = `alarm-${r.unitId}`;
        if (r.quality === "ok" && r.tempC !== null && r.tempC > 8 && !alarms.has(id)) {
          const o: DomainEvent & { type: "alarm" } = {
            type: "alarm",
            event: {
              v: 1,
              eventId: `${id}-raised`,
              siteId: r.siteId,
              at: r.observedAt,
              type: "alarm.raised",
              alarmId: id,
              kind: "temperature",
              unitId: r.unitId,
              tier: "action",
              side: "high",
              raisedAt: r.observedAt,
              message: `${r.unitId} above 8 °C`,
            },
          };
          alarms.set(id, o);
          out.push(o);
        }
      }
      return out;
    },
    reportEvictedRange: () => [],
    acknowledge(alarmId, ack, at) {
      const a = alarms.get(alarmId);
      if (!a) return [];
      return [
        {
          type: "alarm",
          event: {
            ...a.event,
            eventId: `${alarmId}-acknowledged`,
            type: "alarm.acknowledged",
            at,
            acknowledged: ack,
          },
        },
      ];
    },
    tick: () => [],
  };
}

export async function startHarness(
  opts: {
    agents?: [string, string][];
    engine?: EnginePort;
    config?: GatewayConfigInput;
    extensions?: StartGatewayOptions["extensions"];
  } = {},
): Promise<Harness> {
  const dir = await mkdtemp(path.join(tmpdir(), "ct-gw-"));
  const logs: LogLine[] = [];
  const sinkStream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split("\n")) if (line) logs.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  const log = pino({ level: "info" }, sinkStream);
  const credentials = new CredentialStore();
  const secrets: Record<string, string> = {};
  for (const [agentId, siteId] of opts.agents ?? []) {
    secrets[agentId] = (
      await credentials.add({ username: agentId, role: "agent", siteIds: [siteId], agentId })
    ).secret;
  }
  const config = parseGatewayConfig(
    {
      broker: { host: "127.0.0.1", port: 0 },
      api: { enabled: false },
      storage: {
        records: { backend: "sqlite", path: "coldtrace.db" },
        readings: { backend: "sqlite" },
      },
      ingest: { batchMaxDelayMs: 2 },
      ...opts.config,
    },
    "test",
    dir,
  );
  const storage = await openStorage(config.storage);
  // The built-in modules, or a test engine at the seam in place of the excursions module.
  const engine = opts.engine;
  const modules: ExtensionFactory[] = engine
    ? [() => ({ name: "test-engine", engine }), ...(config.lots.enabled ? [lotsExtension()] : [])]
    : builtinExtensions(config);
  const gw = await startGateway({
    config,
    log,
    storage,
    credentials,
    extensions: [...modules, ...(opts.extensions ?? [])],
  });
  const clients: MqttClient[] = [];
  return {
    gw,
    dir,
    logs,
    secrets,
    async agent(agentId) {
      const c = await connectAsync(gw.brokerUrl, {
        clientId: agentId,
        username: agentId,
        password: secrets[agentId],
        reconnectPeriod: 0,
      });
      clients.push(c);
      return c;
    },
    async subscriber() {
      const account = gw.broker?.gatewayAccount ?? {};
      const c = await connectAsync(gw.brokerUrl, {
        ...account,
        clientId: `sub-${clients.length}`,
        reconnectPeriod: 0,
      });
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) await c.endAsync(true);
      await gw.stop();
      await storage.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
