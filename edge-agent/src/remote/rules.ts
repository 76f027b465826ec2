/**
 * Whether a pushed configuration may run on this box, beyond the schema the message already
 * passed (the same agentConfigSchema as the YAML file):
 *
 *   - its documentHash is the hash of what arrived (nothing was lost or altered on the way);
 *   - keys that only the box's own file may set are as in the file: the identity
 *     (`agent.id`, `agent.siteId`), where the data lives (`agent.dataDir`, `outbox.path`: a new
 *     place would mean a new, empty outbox and sequence counter), and `agent.remoteConfig`
 *     (a push cannot switch pushing off, or shorten its own trial);
 *   - every file it names for credentials or TLS is readable here, since secrets are never
 *     sent: they are provisioned on the box first.
 *
 * Every problem is returned, with its path in the message (`config.mqtt.passwordFile`).
 */
import { accessSync, constants } from "node:fs";
import { type ConfigDesired, isColdtraceError } from "@coldtrace/protocol";
import { type AgentConfig, type ConfigIssue, parseConfig } from "../config/index.ts";
import { documentHash } from "./hash.ts";

export async function checkDesired(
  desired: ConfigDesired,
  file: AgentConfig,
): Promise<{ config?: AgentConfig; issues: ConfigIssue[] }> {
  const issues: ConfigIssue[] = [];
  const computed = documentHash(desired.config);
  if (computed !== desired.documentHash)
    issues.push({
      path: "documentHash",
      message: `does not match the configuration received (computed ${computed}), got "${desired.documentHash}"`,
    });
  let config: AgentConfig | undefined;
  try {
    config = parseConfig(desired.config, `configuration version ${desired.version}`);
  } catch (err) {
    if (!isColdtraceError(err, "CT_CFG_INVALID")) throw err;
    for (const i of (err.context.issues ?? []) as ConfigIssue[])
      issues.push({ ...i, path: i.path ? `config.${i.path}` : "config" });
    return { issues };
  }
  const local: [string, unknown, unknown][] = [
    ["agent.id", config.agent.id, file.agent.id],
    ["agent.siteId", config.agent.siteId, file.agent.siteId],
    ["agent.dataDir", config.agent.dataDir, file.agent.dataDir],
    ["outbox.path", config.outbox.path, file.outbox.path],
    ["agent.remoteConfig", config.agent.remoteConfig, file.agent.remoteConfig],
  ];
  for (const [path, pushed, own] of local) {
    if (JSON.stringify(pushed) !== JSON.stringify(own))
      issues.push({
        path: `config.${path}`,
        message: `only the box's own configuration file sets this (${JSON.stringify(own)}), got ${JSON.stringify(pushed)}`,
      });
  }
  const files: [string, string | undefined][] = [
    ["mqtt.passwordFile", config.mqtt.passwordFile],
    ["mqtt.tls.caFile", config.mqtt.tls?.caFile],
    ["mqtt.tls.certFile", config.mqtt.tls?.certFile],
    ["mqtt.tls.keyFile", config.mqtt.tls?.keyFile],
  ];
  for (const [path, name] of files) {
    if (name === undefined) continue;
    try {
      accessSync(name, constants.R_OK);
    } catch (err) {
      issues.push({
        path: `config.${path}`,
        message: `${name} is not readable on the box (${(err as NodeJS.ErrnoException).code}); provision it before pushing a configuration that names it`,
      });
    }
  }
  return issues.length > 0 ? { issues } : { config, issues };
}
