/**
 * `./run demo`: the whole Coldtrace chain on one machine, each part the real program.
 *
 *   Modbus TCP probe simulator (compressor-failure scenario, 60× time)
 *        │ Modbus TCP :1502
 *   edge agent (coldtrace-agent run) ── MQTT ──▶ gateway (embedded aedes :1884, SQLite, API :8080)
 *   simulated fleet (coldtrace-sim fleet) ─────▶      │ lot events, retained eligibility
 *                                                     ▼
 *                                        reference transfer planner (coldtrace-sim planner)
 *
 * It makes a fresh demo folder (.coldtrace/demo): MQTT accounts (hashed), an API token, the
 * configurations; receives two lots into the demo fridge through the REST API; then the
 * simulated compressor fails, the fridge warms past its action limit, the gateway raises the
 * excursion, quarantines the lots inside and the planner prints the change.
 * Ctrl-C stops everything. Ports: COLDTRACE_DEMO_MQTT_PORT (1884), COLDTRACE_DEMO_API_PORT
 * (8080), COLDTRACE_DEMO_MODBUS_PORT (1502).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { CredentialStore, generateToken } from "@coldtrace/gateway";
import { stringify } from "yaml";

const root = path.resolve(import.meta.dirname, "..");
const dir = path.join(root, ".coldtrace", "demo");
const mqttPort = Number(process.env.COLDTRACE_DEMO_MQTT_PORT ?? 1884);
const apiPort = Number(process.env.COLDTRACE_DEMO_API_PORT ?? 8080);
const modbusPort = Number(process.env.COLDTRACE_DEMO_MODBUS_PORT ?? 1502);
const site = "store-1";
const unit = "fridge-1";
const agentId = "demo-pi-1";

const HELP = `usage: ./run demo [--help]

Starts the whole Coldtrace chain on this machine, each part the real program: the gateway
(embedded MQTT broker, SQLite, REST API), a Modbus TCP probe simulator playing a compressor
failure at 60x speed, an edge agent polling it, a simulated fleet of two more sites and the
reference transfer planner. Ctrl-C stops everything.

Ports (environment variables, default):
  COLDTRACE_DEMO_MQTT_PORT    MQTT (embedded broker)      ${mqttPort}
  COLDTRACE_DEMO_API_PORT     REST API, /openapi.json    ${apiPort}
  COLDTRACE_DEMO_MODBUS_PORT  Modbus TCP probe simulator  ${modbusPort}

The demo's folder is .coldtrace/demo (made afresh at every start): MQTT accounts (hashed),
configurations, the SQLite database.`;

const argv = process.argv.slice(2);
if (argv.includes("--help") || argv.includes("-h")) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
if (argv.length > 0) {
  process.stderr.write(`demo: unknown argument ${argv[0]}\n\n${HELP}\n`);
  process.exit(2);
}

const say = (line: string) => process.stdout.write(`demo      │ ${line}\n`);
const children: ChildProcess[] = [];
let stopping = false;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

function start(name: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const prefix = `${name.padEnd(9)} │ `;
  for (const stream of [child.stdout, child.stderr]) {
    let rest = "";
    stream?.on("data", (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) if (line.trim()) process.stdout.write(`${prefix}${line}\n`);
    });
  }
  child.once("exit", (code, signal) => {
    if (!stopping) {
      say(`${name} exited (${signal ?? code}); stopping the demo`);
      void stop(1);
    }
  });
  children.push(child);
  return child;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stop(code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  say("stopping");
  // In reverse order of start: agents, fleet and planner leave while the gateway still
  // answers (their outboxes flush and their sessions close cleanly), then the gateway.
  for (const c of [...children].reverse()) {
    await new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once("exit", () => resolve());
      c.kill("SIGTERM");
      setTimeout(() => c.kill("SIGKILL"), 5000).unref();
    });
  }
  process.exit(code);
}
process.once("SIGINT", () => void stop(0));
process.once("SIGTERM", () => void stop(0));

for (const [name, port] of [
  ["COLDTRACE_DEMO_MQTT_PORT", mqttPort],
  ["COLDTRACE_DEMO_API_PORT", apiPort],
  ["COLDTRACE_DEMO_MODBUS_PORT", modbusPort],
] as const) {
  if (!(await portFree(port))) {
    console.error(`demo: port ${port} is taken; set ${name} to a free port`);
    process.exit(1);
  }
}

// 1. A fresh demo folder with accounts, a token and configurations.
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const credentials = new CredentialStore();
const account = async (input: Parameters<CredentialStore["add"]>[0]) => (await credentials.add(input)).secret;
const agentSecret = await account({ username: agentId, role: "agent", siteIds: [site], agentId });
const plannerSecret = await account({ username: "planner", role: "planner", siteIds: ["*"] });
const fleetSecret = randomBytes(12).toString("hex");
const fleetSites = 2;
for (let s = 1; s <= fleetSites; s++) {
  // The fleet generator logs all its agents in with one shared password.
  const fleetAgent = `fleet-${s}-pi`;
  await account({
    username: fleetAgent,
    role: "agent",
    siteIds: [`fleet-${s}`],
    agentId: fleetAgent,
    secret: fleetSecret,
  });
}
const credentialsFile = path.join(dir, "credentials.json");
await credentials.save(credentialsFile);
const { token, hash } = generateToken();

const gatewayConfig = path.join(dir, "gateway.yaml");
writeFileSync(
  gatewayConfig,
  stringify({
    gatewayId: "demo-gw",
    log: { level: "warn" },
    broker: { mode: "embedded", host: "127.0.0.1", port: mqttPort, credentialsFile },
    storage: {
      records: { backend: "sqlite", path: path.join(dir, "coldtrace.db") },
      readings: { backend: "sqlite" },
    },
    api: { host: "127.0.0.1", port: apiPort, tokens: [{ name: "demo", hash }] },
    // Short alarm delays so the story plays in a couple of minutes (defaults: 15 / 5 min).
    profiles: { byUnit: { [unit]: { delayMs: { alert: 20_000, action: 10_000 } } }, byKind: {} },
  }),
);

const agentConfig = path.join(dir, "agent.yaml");
writeFileSync(path.join(dir, "agent-password"), agentSecret);
writeFileSync(
  agentConfig,
  stringify({
    agent: { id: agentId, siteId: site, dataDir: path.join(dir, "agent") },
    mqtt: {
      url: `mqtt://127.0.0.1:${mqttPort}`,
      username: agentId,
      passwordFile: path.join(dir, "agent-password"),
    },
    units: [{ id: unit, kind: "fridge", name: "Reagent fridge 1" }],
    logging: { level: "warn" },
    buses: [
      {
        id: "tcp-1",
        type: "modbus-tcp",
        host: "127.0.0.1",
        port: modbusPort,
        probes: [
          { id: `${unit}-top`, unit, slaveId: 1, register: 0, type: "int16", scale: 0.1, intervalMs: 2000 },
          {
            id: `${unit}-bottom`,
            unit,
            slaveId: 1,
            register: 2,
            type: "int32",
            wordOrder: "CDAB",
            scale: 0.01,
            intervalMs: 2000,
          },
        ],
      },
    ],
  }),
);

// 2. The gateway first, then everything that talks to it. A failure stops what was started.
try {
  await startEverything();
} catch (err) {
  console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
  await stop(1);
}

async function startEverything(): Promise<void> {
  // 2. The gateway first, then everything that talks to it.
  say(`folder ${path.relative(root, dir)}`);
  start("gateway", ["gateway/src/cli/main.ts", "run", "--config", gatewayConfig]);
  const api = `http://127.0.0.1:${apiPort}`;
  const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  await waitFor("the gateway API", async () => (await fetch(`${api}/openapi.json`)).ok);

  // Two lots received into the fridge (the ERP would send these as movements over MQTT or CSV).
  const put = async (p: string, body: unknown, method = "PUT") => {
    const res = await fetch(`${api}/api/v1${p}`, { method, headers: auth, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
  };
  const now = Date.now();
  await put("/lots/products", {
    sku: "REAG-CRP-100",
    name: "CRP reagent kit",
    storageClass: "2-8C",
    budgetMinutes: { high: 60, low: 0 },
  });
  for (const [lotId, quantity] of [
    ["L2026/0412", 4],
    ["L2026/0519", 10],
  ] as const) {
    await put("/lots/lots", { lotId, sku: "REAG-CRP-100", expiresAt: now + 180 * 86_400_000 });
    await put(
      "/lots/movements",
      {
        v: 1,
        movementId: `demo-receive-${lotId.replace("/", "-")}`,
        kind: "receive",
        siteId: site,
        occurredAt: now - 60_000,
        lotId,
        sku: "REAG-CRP-100",
        quantity,
        toUnitId: unit,
        reference: "DN-DEMO-1",
      },
      "POST",
    );
  }
  say(`lots L2026/0412 (4) and L2026/0519 (10) received into ${site}/${unit}`);

  const mqtt = `mqtt://127.0.0.1:${mqttPort}`;
  start("planner", ["simulators/src/cli/main.ts", "planner", "--url", mqtt, "--site", site], {
    COLDTRACE_MQTT_USERNAME: "planner",
    COLDTRACE_MQTT_PASSWORD: plannerSecret,
  });
  start("probes", [
    "simulators/src/cli/main.ts",
    "tcp",
    "--listen",
    String(modbusPort),
    "--scenario",
    "simulators/scenarios/compressor-failure.yaml",
  ]);
  start("agent", ["edge-agent/src/cli/main.ts", "run", "--config", agentConfig]);
  start("fleet", [
    "simulators/src/cli/main.ts",
    "fleet",
    "--url",
    mqtt,
    "--sites",
    String(fleetSites),
    "--units",
    "3",
    "--probes",
    "2",
    "--speed",
    "1",
    "--interval-ms",
    "5000",
    "--password",
    fleetSecret,
  ]);

  say("");
  say(`API        ${api}/openapi.json   token: ${token}`);
  say(`  curl -H 'authorization: Bearer ${token}' ${api}/api/v1/units`);
  say(`  curl -H 'authorization: Bearer ${token}' '${api}/api/v1/lots/eligibility?siteId=${site}'`);
  say(`MQTT       ${mqtt}  (accounts in ${path.relative(root, credentialsFile)}, secrets hashed)`);
  say(
    `  mosquitto_sub -p ${mqttPort} -u planner -P ${plannerSecret} -t 'ct/v1/+/eligibility/+' -t 'ct/v1/+/events/lot/+' -v`,
  );
  say("Story      the compressor of fridge-1 fails ~10 s in; it warms 8 °C per simulated hour (60× time),");
  say("           crosses 8 °C (excursion opens) and 12 °C (action alarm after 10 s); the lots inside are");
  say("           quarantined and the planner above prints them as not eligible. Ctrl-C stops.");
  say("Not yet    the QA web console (the demo shows the API and the planner instead).");
}
