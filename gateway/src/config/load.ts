/**
 * Load the gateway's YAML configuration. All problems are reported at once as
 * `path: message (file)`, with CT_CFG_UNREADABLE for a file that cannot be read or parsed and
 * CT_CFG_INVALID for one that fails the schema. Relative paths are resolved against the file's
 * folder. The result is deep-frozen (fastify habit: validate once, then never mutate).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { ColdtraceError, deepFreeze, describeIssues, issuesText } from "@coldtrace/protocol";
import { parseDocument } from "yaml";
import { type GatewayConfig, gatewayConfigSchema } from "./schema.ts";

/** Validate an already-parsed value. `where` names the source in error messages. */
export function parseGatewayConfig(value: unknown, where = "config", baseDir = process.cwd()): GatewayConfig {
  const result = gatewayConfigSchema.safeParse(value ?? {});
  if (!result.success) {
    const issues = describeIssues(result.error, value);
    throw new ColdtraceError("CT_CFG_INVALID", `${issuesText(issues, { root: "(root)" })} (${where})`, {
      file: where,
      issues,
    });
  }
  // zod hands out the same default objects on every parse; the copy is ours to resolve and freeze.
  const cfg = structuredClone(result.data);
  const abs = (p: string) => (path.isAbsolute(p) ? p : path.resolve(baseDir, p));
  cfg.broker.credentialsFile = abs(cfg.broker.credentialsFile);
  if (cfg.broker.passwordFile !== undefined) cfg.broker.passwordFile = abs(cfg.broker.passwordFile);
  if (cfg.broker.tls) {
    cfg.broker.tls.certFile = abs(cfg.broker.tls.certFile);
    cfg.broker.tls.keyFile = abs(cfg.broker.tls.keyFile);
  }
  // lots.outboxRetentionMs (before the host kept the outbox) still counts when outbox.retentionMs is not set.
  const raw = (value ?? {}) as { outbox?: { retentionMs?: unknown } };
  if (cfg.lots.outboxRetentionMs !== undefined && raw.outbox?.retentionMs === undefined)
    cfg.outbox.retentionMs = cfg.lots.outboxRetentionMs;
  // SQLite's ":memory:" names no file: resolving it would create one called ":memory:".
  if (cfg.storage.records.backend === "sqlite" && cfg.storage.records.path !== ":memory:")
    cfg.storage.records.path = abs(cfg.storage.records.path);
  if (cfg.console.assetsDir !== undefined) cfg.console.assetsDir = abs(cfg.console.assetsDir);
  return deepFreeze(cfg);
}

/**
 * The gateway's password on an external broker: `broker.password`, or the first line of
 * `broker.passwordFile`, read when the gateway connects (the file may be made after the
 * configuration, e.g. by the compose stack's setup). A missing or empty file is CT_CFG_INVALID.
 */
export function brokerPassword(broker: GatewayConfig["broker"]): string | undefined {
  if (broker.passwordFile === undefined) return broker.password;
  const file = broker.passwordFile;
  const invalid = (message: string) =>
    new ColdtraceError("CT_CFG_INVALID", `broker.passwordFile: ${message}`, {
      file,
      issues: [{ path: "broker.passwordFile", message }],
    });
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw invalid(`cannot read ${file}: ${(err as Error).message}`);
  }
  const password = (text.split(/\r?\n/)[0] ?? "").trim();
  if (password === "") throw invalid(`${file} is empty`);
  return password;
}

/** Read, parse and validate a YAML file. */
export function loadGatewayConfig(file: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ColdtraceError(
      "CT_CFG_UNREADABLE",
      `${file}: ${(err as Error).message}`,
      { file },
      { cause: err },
    );
  }
  // Every YAML syntax error at once, each with its line and column, as the agent does.
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => ({ path: "", message: firstLine(e.message) }));
    throw new ColdtraceError(
      "CT_CFG_UNREADABLE",
      `${file}: not valid YAML: ${issues.map((i) => i.message).join("; ")}`,
      { file, issues },
    );
  }
  const value: unknown = doc.toJS();
  return parseGatewayConfig(value, file, path.dirname(path.resolve(file)));
}

/** yaml's pretty error: "… at line 3, column 3:" then an excerpt of the file; keep the first line. */
function firstLine(message: string): string {
  return (message.split("\n")[0] ?? message).replace(/:$/, "");
}
