/**
 * What can be checked of docker-compose.yml and the Dockerfile without a container engine:
 * the file against the Compose Specification's JSON schema (through dclint, which bundles the
 * schema, plus its security rules), every mounted file, every variable, every port and every
 * config key against the components' own schemas (the gateway's zod config, the agent's), and
 * every path the Dockerfile copies or creates.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseConfig as parseAgentConfig } from "@coldtrace/edge-agent";
import { parseGatewayConfig } from "@coldtrace/gateway";
import { DCLinter } from "dclint";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseDocument, stringify } from "yaml";
import { DEMO_AGENTS, GATEWAY_USERNAME, stackAccounts } from "../setup.ts";

const root = path.resolve(import.meta.dirname, "../..");
const at = (...p: string[]) => path.join(root, ...p);
const composeFile = at("docker-compose.yml");
const composeText = readFileSync(composeFile, "utf8");

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  entrypoint?: string[];
  command?: string[] | string;
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  restart?: string;
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

/** `${NAME}`, `${NAME:-default}`, `${NAME:?message}`; `$$` is a literal dollar. */
const VARIABLE = /(?<!\$)\$\{([A-Z0-9_]+)(?::?([-?])((?:[^{}]|\{[^}]*\})*))?\}/g;

/** Interpolate as compose does, from `env`, falling back to the defaults written in the file. */
function interpolate(text: string, env: Record<string, string>): string {
  return text
    .replace(VARIABLE, (_m, name: string, op: string | undefined, rest: string | undefined) => {
      const value = env[name];
      if (value !== undefined && value !== "") return value;
      if (op === "-") return rest ?? "";
      if (op === "?") throw new Error(`${name} is required: ${rest}`);
      return "";
    })
    .replaceAll("$$", "$");
}

function envExample(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(at(".env.example"), "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1] as string] = m[2] as string;
  }
  return out;
}

/** The file as compose would run it with .env.example (plus a stand-in for the required passwords). */
const example = envExample();
/** Compose interpolates values after parsing the YAML (a `*` default is not an alias). */
function interpolateValues(v: unknown, env: Record<string, string>): unknown {
  if (typeof v === "string") return interpolate(v, env);
  if (Array.isArray(v)) return v.map((x) => interpolateValues(x, env));
  if (v && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolateValues(x, env)]));
  return v;
}
const exampleEnv = { ...example, GRAFANA_ADMIN_PASSWORD: "x", POSTGRES_PASSWORD: "x" };
const compose = interpolateValues(parse(composeText, { merge: true }), exampleEnv) as Compose;
const services = Object.entries(compose.services);
const ours = services.filter(([, s]) => s.image?.startsWith("coldtrace:"));

function mounts(s: Service): { source: string; target: string; readOnly: boolean }[] {
  return (s.volumes ?? []).map((v) => {
    const [source = "", target = "", mode] = v.split(":");
    return { source, target, readOnly: mode === "ro" };
  });
}

/** The repository file behind a container path of a service, through its bind mounts. */
function hostPath(s: Service, containerPath: string): string | undefined {
  for (const m of mounts(s)) {
    if (!m.source.startsWith(".")) continue;
    if (containerPath === m.target) return at(m.source);
    if (containerPath.startsWith(`${m.target}/`))
      return at(m.source, containerPath.slice(m.target.length + 1));
  }
  return undefined;
}

/** The named volume (or bind mount) a container path of a service lives on. */
function volumeOf(s: Service, containerPath: string): string | undefined {
  return mounts(s)
    .filter((m) => containerPath === m.target || containerPath.startsWith(`${m.target}/`))
    .sort((a, b) => b.target.length - a.target.length)[0]?.source;
}

function containerPorts(s: Service): number[] {
  return (s.ports ?? []).map((p) => Number(p.split(":").at(-1)));
}

function service(name: string): Service {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
}

/** dclint's rules worth holding to here; the others are style (key order, quotes). */
const LINT_RULES = new Set([
  "no-duplicate-container-names",
  "no-duplicate-exported-ports",
  "no-quotes-in-volumes",
  "no-unbound-port-interfaces",
  "no-version-field",
  "require-project-name-field",
  "service-image-require-explicit-tag",
]);
const STYLE_RULES = [
  "no-build-and-image", // on purpose: `build` with `image` names the one image every Coldtrace service runs
  "require-quotes-in-ports",
  "service-container-name-regex",
  "service-dependencies-alphabetical-order",
  "service-keys-order",
  "service-ports-alphabetical-order",
  "services-alphabetical-order",
  "top-level-properties-order",
];

/**
 * dclint (schema validation, which it always does, plus LINT_RULES) on the file as compose
 * runs it: interpolated with .env.example, as compose validates after interpolation.
 */
function lint(text: string, dir: string) {
  const file = path.join(dir, "docker-compose.yml");
  writeFileSync(file, stringify(interpolateValues(parse(text, { merge: true }), exampleEnv)));
  const linter = new DCLinter({
    rules: Object.fromEntries([...[...LINT_RULES].map((r) => [r, 2]), ...STYLE_RULES.map((r) => [r, 0])]),
    exclude: [],
    debug: false,
    quiet: true,
  } as never);
  const results = linter.lintFiles([file], false) as {
    messages: { rule: string; line: number; message: string }[];
  }[];
  return results.flatMap((r) => r.messages);
}

describe("docker-compose.yml against the Compose Specification", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-compose-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("validates against the specification's JSON schema and passes dclint's security rules", () => {
    const messages = lint(composeText, dir);
    expect(messages.map((m) => `${m.line}: ${m.rule}: ${m.message}`)).toEqual([]);
  });

  it("the Coldtrace image is tagged with the version in package.json", () => {
    const { version } = JSON.parse(readFileSync(at("package.json"), "utf8")) as { version: string };
    expect(example.COLDTRACE_VERSION).toBe(version);
    for (const [, s] of ours) expect(s.image).toBe(`coldtrace:${version}`);
    expect(composeText).toContain(`coldtrace:\${COLDTRACE_VERSION:-${version}}`);
  });

  it("the check is live: a misspelt key and an unknown condition are refused", () => {
    const misspelt = composeText.replace("    restart: unless-stopped\n", "    restrat: unless-stopped\n");
    expect(lint(misspelt, dir).map((m) => m.rule)).toContain("invalid-schema");
    const badCondition = composeText.replace("service_completed_successfully", "service_done");
    expect(lint(badCondition, dir).map((m) => m.rule)).toContain("invalid-schema");
    // …and so are the rules: a port published on every interface by default.
    const unbound = composeText.replace(
      /\$\{COLDTRACE_HTTP_BIND:-127\.0\.0\.1\}:(?=\$\{COLDTRACE_API_PORT)/,
      "",
    );
    expect(lint(unbound, dir).map((m) => m.rule)).toContain("no-unbound-port-interfaces");
  });
});

describe("what docker-compose.yml refers to exists", () => {
  it("every bind-mounted file or folder is in the repository", () => {
    for (const [name, s] of services) {
      for (const m of mounts(s).filter((m) => m.source.startsWith("."))) {
        expect(existsSync(at(m.source)), `${name}: ${m.source}`).toBe(true);
        // A file mounted onto a file path, a folder onto a folder.
        const isFile = statSync(at(m.source)).isFile();
        expect(isFile, `${name}: ${m.source} → ${m.target}`).toBe(/\.[a-z]+$/.test(m.target));
      }
    }
  });

  it("every named volume is declared, and every declared one is used", () => {
    const used = new Set(
      services.flatMap(([, s]) =>
        mounts(s)
          .map((m) => m.source)
          .filter((src) => !src.startsWith(".") && !src.startsWith("/")),
      ),
    );
    expect([...used].sort()).toEqual(Object.keys(compose.volumes).sort());
  });

  it("depends_on names services; healthy means a health check, completed means a one-shot", () => {
    for (const [name, s] of services) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        const target = service(dep);
        if (condition === "service_healthy") expect(target.healthcheck, `${name} → ${dep}`).toBeDefined();
        if (condition === "service_completed_successfully")
          expect(target.restart, `${name} → ${dep}`).toBe("no");
        // A service outside a profile may not wait for one inside it.
        if (!s.profiles) expect(target.profiles, `${name} → ${dep}`).toBeUndefined();
      }
    }
  });

  it("every long-running service of the stack has a health check", () => {
    for (const [name, s] of services) {
      if (s.restart === "no" || s.profiles?.includes("demo")) continue;
      expect(s.healthcheck?.test.length, name).toBeGreaterThan(0);
    }
  });

  it("the Coldtrace services run files of the image that exist", () => {
    for (const [name, s] of ours) {
      const argv = [...(s.entrypoint ?? ["node", "gateway/bin/coldtrace-gateway.mjs"])];
      const script = argv[0] === "node" ? argv[1] : undefined;
      if (script) expect(existsSync(at(script)), `${name}: ${script}`).toBe(true);
      const cmd = Array.isArray(s.command) ? s.command.join(" ") : (s.command ?? "");
      for (const file of cmd.match(/[a-z-]+\/[\w./-]+\.(?:ts|mjs|yaml)/g) ?? []) {
        if (file.startsWith("etc/")) continue;
        expect(existsSync(at(file)), `${name}: ${file}`).toBe(true);
      }
    }
  });
});

describe("variables and secrets", () => {
  it("every variable the file uses is listed in .env.example, and every listed one is used", () => {
    const used = new Set([...composeText.matchAll(VARIABLE)].map((m) => m[1] as string));
    expect([...used].sort()).toEqual(Object.keys(example).sort());
  });

  it("no secret is written in the file: passwords come from .env or from files", () => {
    for (const [name, s] of services) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (!/PASSWORD|SECRET|TOKEN/.test(key) || key.endsWith("_FILE")) continue;
        const raw = new RegExp(`${key}: (.*)`).exec(composeText)?.[1] ?? "";
        expect(raw.trim(), `${name}: ${key}`).toMatch(/^\$\{[A-Z0-9_]+(:[-?][^}]*)?\}$/);
        expect(value, `${name}: ${key} has no default`).not.toMatch(/change-me|example/);
      }
    }
    expect(composeText).not.toContain("docs/integrator/mosquitto");
    expect(readFileSync(at(".env.example"), "utf8")).toMatch(/GRAFANA_ADMIN_PASSWORD=\n/);
  });

  it("environment variables set on Coldtrace services are read by the code", () => {
    const platform = new Set(["TZ", "PGPASSWORD", "NODE_ENV"]);
    const sources = ["gateway/src", "simulators/src", "edge-agent/src"].flatMap((d) =>
      readdirSync(at(d), { recursive: true, encoding: "utf8" })
        .filter((f) => f.endsWith(".ts"))
        .map((f) => readFileSync(at(d, f), "utf8")),
    );
    sources.push(readFileSync(at("deploy/setup.ts"), "utf8"));
    const read = (name: string) => sources.some((t) => t.includes(`process.env.${name}`));
    for (const [name, s] of ours) {
      for (const key of Object.keys(s.environment ?? {})) {
        if (!platform.has(key)) expect(read(key), `${name}: ${key}`).toBe(true);
      }
      // Variables set inline in a shell command, e.g. the fleet's password.
      const cmd = Array.isArray(s.command) ? s.command.join(" ") : (s.command ?? "");
      for (const m of cmd.matchAll(/\b([A-Z][A-Z0-9_]+)="/g))
        expect(read(m[1] as string), `${name}: ${m[1]}`).toBe(true);
    }
  });
});

describe("the gateway's configuration in the stack", () => {
  const gw = service("gateway");
  const files = readdirSync(at("deploy/gateway")).filter((f) => f.endsWith(".yaml"));

  it("the configured file is mounted, and each shipped file passes the gateway's own schema", () => {
    const configured = (gw.command as string[])[(gw.command as string[]).indexOf("--config") + 1] as string;
    expect(existsSync(hostPath(gw, configured) ?? ""), configured).toBe(true);
    expect(files.sort()).toEqual(["gateway-postgres.yaml", "gateway.yaml"]);
    const setup = service("setup");
    expect((setup.command as string[]).includes(configured), "setup reads the same configuration").toBe(true);
  });

  it.each(files)("%s: ports, hosts and paths match the compose services", (file) => {
    const cfg = parseGatewayConfig(
      parse(readFileSync(at("deploy/gateway", file), "utf8")),
      file,
      "/etc/coldtrace",
    );
    // The API: published, probed by the health check, on the configured port.
    expect(containerPorts(gw)).toEqual([cfg.api.port]);
    expect(gw.healthcheck?.test.join(" ")).toContain(`127.0.0.1:${cfg.api.port}/health`);
    // The broker: the mosquitto service, on the port its configuration listens on.
    expect(cfg.broker.mode).toBe("external");
    const broker = new URL(cfg.broker.url as string);
    expect(broker.hostname).toBe("mosquitto");
    const conf = readFileSync(at("deploy/mosquitto/mosquitto.conf"), "utf8");
    expect(conf).toMatch(new RegExp(`^listener ${broker.port}$`, "m"));
    expect(containerPorts(service("mosquitto"))).toEqual([Number(broker.port)]);
    expect(cfg.broker.username).toBe(GATEWAY_USERNAME);
    // Secrets and records live on volumes the gateway (and setup) mount.
    expect(volumeOf(gw, cfg.broker.passwordFile as string)).toBe("secrets");
    expect(path.basename(cfg.broker.passwordFile as string)).toBe(GATEWAY_USERNAME);
    expect(volumeOf(gw, cfg.broker.credentialsFile)).toBe("gateway-data");
    expect(volumeOf(service("setup"), cfg.broker.credentialsFile)).toBe("gateway-data");
    if (cfg.storage.records.backend === "sqlite")
      expect(volumeOf(gw, cfg.storage.records.path)).toBe("gateway-data");
    else {
      const pg = new URL(cfg.storage.records.url);
      expect(pg.hostname).toBe("postgres");
      expect(pg.password, "the password comes from PGPASSWORD").toBe("");
      const env = service("postgres").environment ?? {};
      expect(pg.username).toBe(env.POSTGRES_USER);
      expect(pg.pathname.slice(1)).toBe(env.POSTGRES_DB);
      expect(gw.environment?.PGPASSWORD).toBeDefined();
    }
    // Readings in the stack's InfluxDB, the database Grafana reads.
    expect(cfg.storage.readings.backend).toBe("influx");
    if (cfg.storage.readings.backend === "influx") {
      const influx = new URL(cfg.storage.readings.url);
      expect(influx.hostname).toBe("influxdb");
      expect(influx.port).toBe("8086");
      expect(service("influxdb").environment?.INFLUXDB_DB).toBe(cfg.storage.readings.database);
      const ds = parse(
        readFileSync(at("dashboards/grafana/provisioning/datasources/coldtrace.yaml"), "utf8"),
      ) as {
        datasources: { url: string; jsonData: { dbName: string } }[];
      };
      expect(ds.datasources.map((d) => d.url)).toContain(`http://influxdb:8086`);
      expect(ds.datasources.map((d) => d.jsonData.dbName)).toContain(cfg.storage.readings.database);
    }
  });
});

describe("Mosquitto, Grafana and Node-RED in the stack", () => {
  it("Mosquitto's password file and ACL are the setup's, on the broker-accounts volume", () => {
    const m = service("mosquitto");
    const conf = readFileSync(at("deploy/mosquitto/mosquitto.conf"), "utf8");
    const file = (key: string) => new RegExp(`^${key} (\\S+)$`, "m").exec(conf)?.[1] as string;
    expect(volumeOf(m, file("password_file"))).toBe("broker-accounts");
    expect(volumeOf(m, file("acl_file"))).toBe("broker-accounts");
    expect(conf).toMatch(/^allow_anonymous false$/m);
    expect(volumeOf(service("setup"), "/var/lib/coldtrace-broker")).toBe("broker-accounts");
    expect((service("setup").command as string[]).join(" ")).toContain("--broker /var/lib/coldtrace-broker");
    expect(m.entrypoint?.join(" ")).toContain("/mosquitto/start.sh");
  });

  it("Grafana is provisioned from the repository, its home dashboard included", () => {
    const g = service("grafana");
    expect(hostPath(g, "/etc/grafana/provisioning")).toBe(at("dashboards/grafana/provisioning"));
    const home = g.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH as string;
    expect(existsSync(hostPath(g, home) ?? ""), home).toBe(true);
    const provider = parse(
      readFileSync(at("dashboards/grafana/provisioning/dashboards/coldtrace.yaml"), "utf8"),
    ) as {
      providers: { options: { path: string } }[];
    };
    for (const p of provider.providers)
      expect(hostPath(g, p.options.path)).toBe(at("dashboards/grafana/dashboards"));
  });

  const flows = ["escalation", "erp-bridge"] as const;
  it.each(flows)(
    "Node-RED %s: the flows folder and settings are mounted, its MQTT account exists",
    (name) => {
      const s = service(name);
      expect(hostPath(s, "/flows")).toBe(at("flows"));
      expect(hostPath(s, "/data/settings.js")).toBe(at("deploy/node-red/settings.js"));
      expect(readFileSync(at("deploy/node-red/settings.js"), "utf8")).toContain("process.env.COLDTRACE_FLOW");
      const env = s.environment ?? {};
      expect(env.COLDTRACE_FLOW).toBe(name);
      expect(new URL(env.COLDTRACE_MQTT_URL as string).hostname).toBe("mosquitto");
      const account = stackAccounts({ erpSites: ["*"], demo: false }).find(
        (a) => a.username === env.COLDTRACE_MQTT_USERNAME,
      );
      expect(account, env.COLDTRACE_MQTT_USERNAME).toBeDefined();
      expect(path.basename(env.COLDTRACE_MQTT_PASSWORD_FILE as string)).toBe(account?.username);
      expect(volumeOf(s, env.COLDTRACE_MQTT_PASSWORD_FILE as string)).toBe("secrets");
    },
  );

  const flowsMerged = flows.every((f) => existsSync(at("flows", f)));
  it.skipIf(!flowsMerged)("the flow files Node-RED loads exist (flows/<name>/flows.json)", () => {
    for (const f of flows) expect(existsSync(at("flows", f, "flows.json")), f).toBe(true);
  });
});

describe("the demo profile", () => {
  const agentService = service("agent");
  const agentFile = hostPath(agentService, "/etc/coldtrace-agent/agent.yaml") as string;

  it("the edge agent's configuration passes the agent's own schema and points at the stack", () => {
    const cfg = parseAgentConfig(parseDocument(readFileSync(agentFile, "utf8")).toJS(), agentFile);
    expect(new URL(cfg.mqtt.url).hostname).toBe("mosquitto");
    expect(volumeOf(agentService, cfg.mqtt.passwordFile as string)).toBe("secrets");
    expect(volumeOf(agentService, cfg.agent.dataDir)).toBe("agent-data");
    const demo = DEMO_AGENTS.find((a) => a.username === cfg.mqtt.username);
    expect(demo?.agentId).toBe(cfg.agent.id);
    expect(demo?.siteIds).toEqual([cfg.agent.siteId]);
    const probes = service("probes");
    const args = probes.command as string[];
    for (const bus of cfg.buses) {
      if (bus.type !== "modbus-tcp") continue;
      expect(bus.host).toBe("probes");
      expect(String(bus.port)).toBe(args[args.indexOf("--listen") + 1]);
    }
    expect(args[args.indexOf("--host") + 1]).toBe("0.0.0.0");
  });

  it("the fleet's agents have accounts sharing the secret file it reads", () => {
    const cmd = (service("fleet").command as string[]).join(" ");
    const sites = Number(/--sites (\d+)/.exec(cmd)?.[1]);
    const fleet = DEMO_AGENTS.filter((a) => a.secretGroup === "fleet");
    expect(fleet.map((a) => a.username)).toEqual(
      Array.from({ length: sites }, (_, i) => `fleet-${i + 1}-pi`),
    );
    expect(cmd).toContain("/run/coldtrace/secrets/fleet");
    expect(cmd).not.toMatch(/--password/);
    expect((service("planner").command as string[]).join(" ")).toContain("/run/coldtrace/secrets/planner");
  });
});

describe("Dockerfile", () => {
  const text = readFileSync(at("Dockerfile"), "utf8");
  const lines = text.split("\n").filter((l) => !l.startsWith("#"));

  it("every path it copies exists, and every workspace's package.json comes before npm ci", () => {
    const copies = lines.filter((l) => l.startsWith("COPY ")).map((l) => l.split(/\s+/).slice(1, -1));
    for (const src of copies.flat()) expect(existsSync(at(src)), src).toBe(true);
    const ci = lines.findIndex((l) => l.includes("npm ci"));
    const before = lines.slice(0, ci).join("\n");
    const workspaces = (JSON.parse(readFileSync(at("package.json"), "utf8")) as { workspaces: string[] })
      .workspaces;
    for (const w of workspaces) expect(before, w).toContain(`COPY ${w}/package.json ${w}/`);
  });

  it("the folders the processes write are made and owned by the user they run as", () => {
    const user = /^USER (\S+)$/m.exec(text)?.[1];
    expect(user).toBe("node");
    const chown = /chown node:node ([^&\n]+)/.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
    for (const [name, s] of ours)
      for (const m of mounts(s).filter((m) => !m.source.startsWith(".") && !m.readOnly))
        expect(chown, `${name}: ${m.target}`).toContain(m.target);
    for (const file of readdirSync(at("deploy/gateway"))) {
      const cfg = parseGatewayConfig(
        parse(readFileSync(at("deploy/gateway", file), "utf8")),
        file,
        "/etc/coldtrace",
      );
      expect(chown).toContain(path.dirname(cfg.broker.credentialsFile));
      if (cfg.storage.records.backend === "sqlite")
        expect(chown).toContain(path.dirname(cfg.storage.records.path));
    }
  });

  it("its entrypoint and default command are the gateway's launcher and a shipped path", () => {
    const entry = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(text)?.[1] ?? "[]") as string[];
    expect(existsSync(at(entry[1] ?? ""))).toBe(true);
    const cmd = JSON.parse(/^CMD (.*)$/m.exec(text)?.[1] ?? "[]") as string[];
    expect(cmd[0]).toBe("run");
    expect(hostPath(service("gateway"), cmd[2] ?? "")).toBe(at("deploy/gateway/gateway.yaml"));
  });
});
