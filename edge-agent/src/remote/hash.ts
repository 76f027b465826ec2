/**
 * The documentHash of a configuration (protocol's `configDocumentHash`: sha256 of the
 * canonical JSON) with node:crypto, which the agent loads anyway: Web Crypto, which the
 * protocol uses so it stays free of Node-only modules, would add its own ~0.6 MiB of RSS to
 * the agent. A test keeps the two equal.
 */
import { createHash } from "node:crypto";
import { type AgentConfigParsed, canonicalJson } from "@coldtrace/protocol";

export function documentHash(config: AgentConfigParsed): string {
  return createHash("sha256").update(canonicalJson(config), "utf8").digest("hex");
}
