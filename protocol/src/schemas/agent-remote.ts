/**
 * Remote configuration of an edge agent: the gateway publishes the desired configuration
 * (retained) in the agent's own subtree; the agent validates it with the same schema as its
 * configuration file, applies it on trial, and reports back (retained) what it runs.
 *
 *   gateway ── config/desired  { version, documentHash, config } ──▶ agent
 *                                    validate (agentConfigSchema + local rules) ─┬─ refused → rejected
 *                                    apply on trial: broker and probes within graceMs?
 *                                        ├─ yes → applied (the new last good configuration)
 *                                        └─ no  → rolled_back to the last good, by itself
 *   gateway ◀── config/reported { state, running: { version, documentHash, configHash } } ── agent
 *
 * Secrets never travel in a configuration: `mqtt.password` is refused here (the gateway
 * cannot send it, the agent will not take it). Credentials and keys stay on the box as files
 * the configuration refers to (`mqtt.passwordFile`, `mqtt.tls.*File`); rotating one is
 * "provision the new file, then push a configuration that names it", and a configuration
 * that cannot log in with it is rolled back. See docs/protocol.md "Remote configuration".
 */
import { z } from "zod";
import { agentConfigSchema } from "./agent-config.ts";
import { epochMs, segmentId, version } from "./common.ts";

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "must be a sha256 hex digest");

export const configDesired = z
  .object({
    v: version,
    agentId: segmentId,
    /** Set by the gateway: 1, 2, 3 … per agent. The agent never goes back to a lower version. */
    version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    /** sha256 of the canonical JSON of `config` with its defaults applied (configDocumentHash). */
    documentHash: sha256Hex,
    /** The whole agent configuration, as in the agent's YAML file (agent-config.ts). */
    config: agentConfigSchema,
    issuedAt: epochMs,
    /** Who asked for it (user or service), for the audit trail. */
    issuedBy: z.string().min(1).max(128).optional(),
    /** Time the agent has to reach the broker and its probes before it rolls back; default its own. */
    graceMs: z.number().int().min(1000).max(3_600_000).optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (d.config.mqtt.password !== undefined)
      ctx.addIssue({
        code: "custom",
        message:
          "secrets are never sent in a configuration: put the password in a file on the box and set passwordFile",
        path: ["config", "mqtt", "password"],
      });
  });
export type ConfigDesired = z.output<typeof configDesired>;
export type ConfigDesiredInput = z.input<typeof configDesired>;

export const configIssue = z
  .object({
    path: z.string().max(500),
    message: z.string().max(1000),
    line: z.number().int().min(1).optional(),
  })
  .strict();

export const configReported = z
  .object({
    v: version,
    agentId: segmentId,
    /**
     * - applied: runs `running`, confirmed (or its own file, when nothing was pushed).
     * - trial: runs a pushed configuration that has not yet reached broker and probes.
     * - rejected: refused `desiredVersion` (see `reason`, `issues`); runs the previous one.
     * - rolled_back: applied `desiredVersion`, could not reach broker or probes within the
     *   grace period, and went back to its last good configuration by itself.
     */
    state: z.enum(["applied", "trial", "rejected", "rolled_back"]),
    running: z
      .object({
        /** `file`: the box's own YAML file; `remote`: a pushed configuration. */
        source: z.enum(["file", "remote"]),
        /** The pushed version it runs; null for the file. */
        version: z.number().int().min(1).nullable(),
        /** configDocumentHash of the document it runs. */
        documentHash: sha256Hex,
        /** The effective configuration's hash, as in the birth. */
        configHash: sha256Hex,
      })
      .strict(),
    /** The desired version this report answers; absent before any was received. */
    desiredVersion: z.number().int().min(1).optional(),
    reason: z
      .object({ code: z.string().min(1).max(64), message: z.string().min(1).max(2000) })
      .strict()
      .optional(),
    /** Every problem of a refused configuration, with its path (`config.buses[0].port`). */
    issues: z.array(configIssue).max(200).optional(),
    at: epochMs,
  })
  .strict();
export type ConfigReported = z.output<typeof configReported>;

/** JSON with object keys sorted at every level, undefined dropped: the same text for the same data. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/**
 * sha256 (hex) of a configuration document's canonical JSON, after the schema's defaults: the
 * gateway and the agent get the same hash for the same configuration however it was written.
 * Web Crypto, so the contract stays free of Node-only modules.
 */
export async function configDocumentHash(config: z.output<typeof agentConfigSchema>): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(config));
  const digest = await globalThis.crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
