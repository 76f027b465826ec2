/**
 * The real gateway for the flows' tests: embedded broker (ACLs on) on a free port, SQLite
 * records, the built-in modules (excursions, lots, notify), the REST API with one token, and
 * MQTT accounts made for the test. Plus what the tests ask of it: API calls, and waiting until a
 * given client (Node-RED's session) has subscribed.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  builtinExtensions,
  CredentialStore,
  type GatewayRuntime,
  generateToken,
  parseGatewayConfig,
  type Role,
  startGateway,
} from "@coldtrace/gateway";
import pino from "pino";

export interface Account {
  username: string;
  role: Role;
  siteIds: string[];
  agentId?: string;
}

export interface TestGateway {
  gw: GatewayRuntime;
  dir: string;
  token: string;
  /** Secrets of the accounts, by username. */
  secrets: ReadonlyMap<string, string>;
  api<T = unknown>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** Resolves once `clientId` has subscribed to every filter in `filters`. */
  subscribed(clientId: string, filters: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestGateway(
  name: string,
  gatewayId: string,
  accounts: readonly Account[],
): Promise<TestGateway> {
  const dir = await mkdtemp(path.join(tmpdir(), `ct-${name}-`));
  const credentials = new CredentialStore();
  const secrets = new Map<string, string>();
  for (const a of accounts) secrets.set(a.username, (await credentials.add(a)).secret);
  const { token, hash } = generateToken();
  const config = parseGatewayConfig(
    {
      gatewayId,
      broker: { host: "127.0.0.1", port: 0 },
      api: { host: "127.0.0.1", port: 0, tokens: [{ name: "node-red", hash }] },
      ingest: { batchMaxDelayMs: 2 },
      storage: { records: { backend: "sqlite", path: "ct.db" }, readings: { backend: "sqlite" } },
    },
    name,
    dir,
  );
  const gw = await startGateway({
    config,
    extensions: builtinExtensions(config),
    log: pino({ level: "warn" }),
    credentials,
  });
  return {
    gw,
    dir,
    token,
    secrets,
    async api<T>(method: string, url: string, body?: unknown) {
      const res = await fetch(`${gw.apiUrl}/api/v1${url}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as T };
    },
    subscribed(clientId, filters) {
      return new Promise<void>((resolve) => {
        const seen = new Set<string>();
        const on = (subs: Array<{ topic: string }>, client: { id: string } | null) => {
          if (client?.id !== clientId) return;
          for (const s of subs) seen.add(s.topic);
          if (filters.every((f) => seen.has(f))) {
            gw.broker!.aedes.off("subscribe", on as never);
            resolve();
          }
        };
        gw.broker!.aedes.on("subscribe", on as never);
      });
    },
    async stop() {
      await gw.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
