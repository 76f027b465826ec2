#!/usr/bin/env node
/**
 * coldtrace-gateway: the only gateway code that may exit, and the composition root: `run`
 * starts the gateway host (app/) with the built-in modules of builtins.ts.
 *
 *   coldtrace-gateway run [--config coldtrace-gateway.yaml]   (with the lots module unless lots.enabled: false)
 *   coldtrace-gateway check [--config …]                       validate the configuration
 *   coldtrace-gateway credentials add --agent <id> --site <site> [--config …]
 *   coldtrace-gateway credentials add --service <name> --role planner|erp|monitor [--site <site>]…
 *   coldtrace-gateway credentials list | remove <username> | mosquitto-acl
 *   (add takes --secret <s> to set a known secret, e.g. for the demo; default: generated)
 *   coldtrace-gateway tokens create --name <name>              prints a token and its config line
 *
 * Bad configuration prints every problem, without a stack trace, and exits 2.
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { isColdtraceError } from "@coldtrace/protocol";
import pino from "pino";
import { generateToken } from "../api/auth.ts";
import { startGateway } from "../app/gateway.ts";
import { mosquittoAcl } from "../broker/acl.ts";
import { CredentialStore, type Role } from "../broker/credentials.ts";
import { loadGatewayConfig, parseGatewayConfig } from "../config/load.ts";
import type { GatewayConfig } from "../config/schema.ts";
import { builtinExtensions } from "./builtins.ts";

const USAGE = `usage:
  coldtrace-gateway run [--config file]
  coldtrace-gateway check [--config file]
  coldtrace-gateway credentials add --agent <id> --site <site> [--secret <s>] [--config file]
  coldtrace-gateway credentials add --service <name> --role planner|erp|monitor [--site <site>]... [--config file]
  coldtrace-gateway credentials list [--config file]
  coldtrace-gateway credentials mosquitto-acl [--name <gateway username>] [--config file]
  coldtrace-gateway credentials remove <username> [--config file]
  coldtrace-gateway tokens create --name <name>
`;

const DEFAULT_CONFIG = "coldtrace-gateway.yaml";

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function fail(text: string, code = 1): never {
  process.stderr.write(`${text}\n`);
  process.exit(code);
}

function config(file: string | undefined): GatewayConfig {
  if (file === undefined && !existsSync(DEFAULT_CONFIG)) return parseGatewayConfig({}, "defaults");
  return loadGatewayConfig(file ?? DEFAULT_CONFIG);
}

async function run(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      agent: { type: "string" },
      service: { type: "string" },
      role: { type: "string" },
      site: { type: "string", multiple: true },
      name: { type: "string" },
      secret: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [command, sub, arg] = positionals;
  if (values.help || command === undefined) return out(USAGE);

  switch (command) {
    case "check": {
      const cfg = config(values.config);
      out(
        `configuration ok: broker ${cfg.broker.mode}, records ${cfg.storage.records.backend}, readings ${cfg.storage.readings.backend}, lots ${cfg.lots.enabled ? "on" : "off"}`,
      );
      return;
    }
    case "tokens": {
      if (sub !== "create" || !values.name) fail(USAGE, 2);
      const { token, hash } = generateToken();
      out(`token (shown once, give it to the API client): ${token}`);
      out("add to the configuration under api.tokens:");
      out(`  - name: ${values.name}\n    hash: "${hash}"`);
      return;
    }
    case "credentials": {
      const cfg = config(values.config);
      const file = cfg.broker.credentialsFile;
      const store = await CredentialStore.load(file);
      if (sub === "mosquitto-acl") {
        process.stdout.write(mosquittoAcl(store.list(), values.name ?? "coldtrace-gateway"));
        return;
      }
      if (sub === "list") {
        for (const c of store.list()) out(`${c.username}\t${c.role}\t${c.siteIds.join(",")}`);
        return;
      }
      if (sub === "remove") {
        if (!arg || !store.remove(arg)) fail(`no account ${arg ?? ""} in ${file}`);
        await store.save(file);
        out(`removed ${arg}`);
        return;
      }
      if (sub !== "add") fail(USAGE, 2);
      const sites = values.site ?? [];
      // A known secret (demo, provisioning scripts); otherwise a generated one.
      const secret = values.secret === undefined ? {} : { secret: values.secret };
      let added: { secret: string; credential: { username: string } };
      if (values.agent) {
        if (sites.length !== 1) fail("credentials add --agent needs exactly one --site", 2);
        added = await store.add({
          username: values.agent,
          role: "agent",
          siteIds: sites,
          agentId: values.agent,
          ...secret,
        });
      } else if (values.service && values.role) {
        const role = values.role as Role;
        if (!["planner", "erp", "monitor"].includes(role)) fail("--role must be planner, erp or monitor", 2);
        added = await store.add({
          username: values.service,
          role,
          siteIds: sites.length > 0 ? sites : ["*"],
          ...secret,
        });
      } else {
        fail(USAGE, 2);
      }
      await store.save(file);
      out(`account ${added.credential.username} saved to ${file} (secret stored as a scrypt hash)`);
      out(`MQTT username: ${added.credential.username}`);
      out(`MQTT password (shown once): ${added.secret}`);
      return;
    }
    case "run": {
      const cfg = config(values.config);
      const log = pino({ level: cfg.log.level });
      const gw = await startGateway({ config: cfg, log, extensions: builtinExtensions(cfg) });
      log.info(
        {
          broker: gw.brokerUrl,
          api: gw.apiUrl,
          gatewayId: cfg.gatewayId,
          extensions: [...gw.extensions.keys()],
          lots: gw.extensions.has("lots"),
        },
        "gateway started",
      );
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, "gateway stopping");
        gw.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            log.error({ err }, "gateway stop failed");
            process.exit(1);
          },
        );
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
      return;
    }
    default:
      fail(USAGE, 2);
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  if (isColdtraceError(err)) {
    const exit = err.code === "CT_CFG_INVALID" || err.code === "CT_CFG_UNREADABLE" ? 2 : 1;
    const issues = (err.context.issues as { path: string; message: string }[] | undefined) ?? [];
    if (issues.length > 0) {
      process.stderr.write(`${String(err.context.file)}: configuration is not valid (${err.code})\n`);
      // YAML syntax errors carry their line and column in the message, and no path.
      const where = (i: { path: string }) =>
        i.path ? `${i.path}: ` : err.code === "CT_CFG_UNREADABLE" ? "" : "(root): ";
      for (const i of issues) process.stderr.write(`  ${where(i)}${i.message}\n`);
    } else {
      process.stderr.write(`${err.message}\n`);
    }
    process.exit(exit);
  }
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
