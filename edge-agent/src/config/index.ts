/**
 * Loading the agent's YAML configuration: read ─▶ YAML parse ─▶ zod (shapes + cross-checks)
 * ─▶ derived defaults ─▶ deep freeze. Every problem is reported at once as
 * `file: path: what is expected, got X`, in one ColdtraceError (CT_CFG_INVALID, or
 * CT_CFG_UNREADABLE when the file cannot be read or is not YAML). Nothing here exits.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ColdtraceError, deepFreeze, describeIssues, type WireIssue } from "@coldtrace/protocol";
import { parseDocument } from "yaml";
import { type AgentConfig, configSchema } from "./schema.ts";

export * from "./buses.ts";
export * from "./schema.ts";

const DAY_MS = 86_400_000;

function invalid(file: string, issues: WireIssue[]): ColdtraceError {
  const lines = issues.map((i) => `  ${i.path || "(top level)"}: ${i.message}`);
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
export function parseConfig(doc: unknown, file: string): AgentConfig {
  const result = configSchema.safeParse(doc);
  if (!result.success) throw invalid(file, describeIssues(result.error, doc));
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
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ColdtraceError(
      "CT_CFG_UNREADABLE",
      `${file}: cannot read the configuration (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      { file },
    );
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    // yaml's pretty error: "… at line 3, column 3:" then an excerpt; keep the first line.
    const lines = doc.errors.map((e) => `  ${(e.message.split("\n")[0] ?? "").replace(/:$/, "")}`);
    throw new ColdtraceError("CT_CFG_UNREADABLE", `${file}: not valid YAML:\n${lines.join("\n")}\n`, {
      file,
      issues: doc.errors.map((e) => ({ path: "", message: e.message })),
    });
  }
  return parseConfig(doc.toJS() ?? {}, file);
}

/** sha256 of the effective configuration (without secrets), for the birth's configHash. */
export function configHash(cfg: AgentConfig): string {
  const { password: _password, ...mqtt } = cfg.mqtt;
  return createHash("sha256")
    .update(JSON.stringify({ ...cfg, mqtt }))
    .digest("hex");
}
