/**
 * First-start accounts for the docker-compose stack (`setup` service, runs before the broker
 * and every MQTT client): the MQTT accounts of the gateway and the services, each with a
 * generated secret, and what Mosquitto needs to enforce them.
 *
 *   {secrets}/<username>          the account's secret, one line, mode 0600 (read by the service
 *                                 that logs in with it: gateway, planner, Node-RED, demo agents)
 *   {credentialsFile}             the gateway's account list (scrypt hashes; `coldtrace-gateway
 *                                 credentials …` manages it)
 *   {broker}/acl                  the Mosquitto ACL, generated from the account list each start
 *   {broker}/passwd.new           new accounts as `user:secret`, mode 0600: Mosquitto's start
 *                                 script hashes it with `mosquitto_passwd -U`, appends it to
 *                                 its password file and deletes it (deploy/mosquitto/start.sh)
 *
 * Idempotent: an account that exists keeps its secret; only missing ones are made. The example
 * password file of docs/integrator/mosquitto/ is never used.
 *
 *   node deploy/setup.ts --config /etc/coldtrace/gateway.yaml --secrets /run/coldtrace/secrets
 *        --broker /var/lib/coldtrace-broker [--erp-sites store-1,store-2] [--demo]
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CredentialStore, loadGatewayConfig, mosquittoAcl, type Role } from "@coldtrace/gateway";

/** The gateway's own account on Mosquitto (not in the account list: the embedded broker needs none). */
export const GATEWAY_USERNAME = "coldtrace-gateway";

export interface Account {
  username: string;
  role: Exclude<Role, "gateway">;
  siteIds: string[];
  agentId?: string;
  /** Accounts sharing one secret (the fleet simulator logs all its agents in with one). */
  secretGroup?: string;
}

/** The demo profile's agents: the edge agent of store-1 and the simulated fleet's two sites. */
export const DEMO_AGENTS: readonly Account[] = [
  { username: "demo-pi-1", role: "agent", siteIds: ["store-1"], agentId: "demo-pi-1" },
  {
    username: "fleet-1-pi",
    role: "agent",
    siteIds: ["fleet-1"],
    agentId: "fleet-1-pi",
    secretGroup: "fleet",
  },
  {
    username: "fleet-2-pi",
    role: "agent",
    siteIds: ["fleet-2"],
    agentId: "fleet-2-pi",
    secretGroup: "fleet",
  },
];

export function stackAccounts(opts: { erpSites: string[]; demo: boolean }): Account[] {
  return [
    { username: "planner", role: "planner", siteIds: ["*"] },
    { username: "nodered", role: "monitor", siteIds: ["*"] },
    { username: "erp-bridge", role: "erp", siteIds: opts.erpSites },
    ...(opts.demo ? DEMO_AGENTS : []),
  ];
}

export interface SetupOptions {
  credentialsFile: string;
  secretsDir: string;
  brokerDir: string;
  accounts: readonly Account[];
  log?: (line: string) => void;
}

async function writePrivate(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, file);
}

/** Make the missing accounts; returns the usernames made now. */
export async function setupAccounts(opts: SetupOptions): Promise<string[]> {
  const log = opts.log ?? ((line) => process.stdout.write(`setup: ${line}\n`));
  await mkdir(opts.secretsDir, { recursive: true, mode: 0o700 });
  await mkdir(opts.brokerDir, { recursive: true });
  const store = await CredentialStore.load(opts.credentialsFile);
  const secretFile = (name: string) => path.join(opts.secretsDir, name);
  const made: string[] = [];
  const fresh: string[] = [];
  const secretOf = async (name: string): Promise<string> => {
    const file = secretFile(name);
    if (existsSync(file)) return (await readFile(file, "utf8")).trim();
    const secret = randomBytes(24).toString("base64url");
    await writePrivate(file, `${secret}\n`);
    return secret;
  };

  if (!existsSync(secretFile(GATEWAY_USERNAME))) {
    fresh.push(`${GATEWAY_USERNAME}:${await secretOf(GATEWAY_USERNAME)}`);
    made.push(GATEWAY_USERNAME);
  }
  for (const a of opts.accounts) {
    if (store.get(a.username)) continue;
    const secret = await secretOf(a.secretGroup ?? a.username);
    await store.add({
      username: a.username,
      role: a.role,
      siteIds: a.siteIds,
      secret,
      ...(a.agentId === undefined ? {} : { agentId: a.agentId }),
    });
    fresh.push(`${a.username}:${secret}`);
    made.push(a.username);
  }
  if (made.length > 0) await store.save(opts.credentialsFile);
  // The ACL always follows the account list (accounts added with `credentials add` included).
  await writeFile(path.join(opts.brokerDir, "acl"), mosquittoAcl(store.list(), GATEWAY_USERNAME), {
    mode: 0o644,
  });
  if (fresh.length > 0) {
    const pending = path.join(opts.brokerDir, "passwd.new");
    const before = existsSync(pending) ? await readFile(pending, "utf8") : "";
    await writePrivate(pending, `${before}${fresh.join("\n")}\n`);
  }
  log(made.length > 0 ? `made accounts ${made.join(", ")}` : "accounts up to date");
  return made;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string", default: "/etc/coldtrace/gateway.yaml" },
      secrets: { type: "string", default: "/run/coldtrace/secrets" },
      broker: { type: "string", default: "/var/lib/coldtrace-broker" },
      "erp-sites": { type: "string", default: process.env.COLDTRACE_ERP_SITES || "*" },
      demo: { type: "boolean", default: process.env.COLDTRACE_DEMO_ACCOUNTS === "true" },
    },
  });
  const config = loadGatewayConfig(values.config);
  await setupAccounts({
    credentialsFile: config.broker.credentialsFile,
    secretsDir: values.secrets,
    brokerDir: values.broker,
    accounts: stackAccounts({
      erpSites: values["erp-sites"].split(",").map((s) => s.trim()),
      demo: values.demo,
    }),
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`setup: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
