/**
 * Loading the agent's YAML configuration: read ─▶ YAML parse (with node positions) ─▶ zod
 * (shapes + cross-checks) ─▶ derived defaults ─▶ deep freeze. Every problem is reported at
 * once as `line N: path: what is expected, got X` under the file name, in one ColdtraceError
 * (CT_CFG_INVALID, or CT_CFG_UNREADABLE when the file cannot be read or is not YAML).
 * Nothing here exits.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ColdtraceError, deepFreeze, describeIssues, type WireIssue } from "@coldtrace/protocol";
import type { z } from "zod";
import { type AgentConfig, configSchema } from "./schema.ts";
import { type Position, readYamlFile } from "./yaml.ts";

export * from "./buses.ts";
export * from "./schema.ts";
export * from "./yaml.ts";

const DAY_MS = 86_400_000;

/** A configuration problem: path and message, and where it is written when known. */
export interface ConfigIssue extends WireIssue {
  line?: number;
  column?: number;
}

export type Locate = (path: readonly PropertyKey[]) => Position | undefined;

/**
 * zod issues as configuration problems, each with the line it is on. An unknown key is
 * located at the key itself rather than at the object that holds it.
 */
export function configIssues(error: z.ZodError, doc: unknown, locate?: Locate): ConfigIssue[] {
  return describeIssues(error, doc).map((issue, i) => {
    const raw = error.issues[i];
    const path = raw ? [...raw.path] : [];
    const keys = raw?.code === "unrecognized_keys" ? raw.keys : [];
    const pos = locate?.(keys.length > 0 ? [...path, keys[0] as string] : path);
    return pos ? { ...issue, line: pos.line, column: pos.column } : issue;
  });
}

export function formatConfigIssues(issues: readonly ConfigIssue[]): string {
  return issues
    .map((i) => `  ${i.line !== undefined ? `line ${i.line}: ` : ""}${i.path || "(top level)"}: ${i.message}`)
    .join("\n");
}

function invalid(file: string, issues: ConfigIssue[]): ColdtraceError {
  const lines = [formatConfigIssues(issues)];
  const n = issues.length;
  return new ColdtraceError(
    "CT_CFG_INVALID",
    `${file}: ${n} problem${n === 1 ? "" : "s"} in the configuration:\n${lines.join("\n")}\n`,
    { file, issues },
  );
}

/** Default outbox bound: `retentionDays` of every probe at its own interval. */
export function defaultMaxReadings(buses: AgentConfig["buses"], retentionDays: number): number {
  let total = 0;
  for (const bus of buses)
    for (const p of bus.probes) total += Math.ceil((retentionDays * DAY_MS) / p.intervalMs);
  return Math.max(100, total);
}

/** Validate an already-parsed document. `file` names it in messages. */
export function parseConfig(doc: unknown, file: string, locate?: Locate): AgentConfig {
  const result = configSchema.safeParse(doc);
  if (!result.success) throw invalid(file, configIssues(result.error, doc, locate));
  const cfg = result.data;
  const resolved: AgentConfig = {
    ...cfg,
    outbox: {
      ...cfg.outbox,
      path: cfg.outbox.path ?? join(cfg.agent.dataDir, "outbox.db"),
      maxReadings: cfg.outbox.maxReadings ?? defaultMaxReadings(cfg.buses, cfg.outbox.retentionDays),
    },
  };
  return deepFreeze(resolved);
}

/** Read, parse and validate a YAML configuration file. */
export function loadConfig(file: string): AgentConfig {
  return loadConfigFile(file).config;
}

/** The effective configuration and the document it came from (for its documentHash). */
export function loadConfigFile(file: string): { config: AgentConfig; document: unknown } {
  const yaml = readYamlFile(file);
  return { config: parseConfig(yaml.value, file, (path) => yaml.locate(path)), document: yaml.value };
}

/** sha256 of the effective configuration (without secrets), for the birth's configHash. */
export function configHash(cfg: AgentConfig): string {
  const { password: _password, ...mqtt } = cfg.mqtt;
  return createHash("sha256")
    .update(JSON.stringify({ ...cfg, mqtt }))
    .digest("hex");
}
