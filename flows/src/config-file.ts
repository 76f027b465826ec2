/**
 * Configuration files of the flows (the escalation configuration, the ERP holds mapping): read
 * as YAML (JSON is YAML too), validated by zod, every problem reported by path at once, like
 * the gateway's and the agent's configuration (`CT_CFG_INVALID`, `CT_CFG_UNREADABLE`).
 */
import { readFileSync } from "node:fs";
import { ColdtraceError, describeIssues } from "@coldtrace/protocol";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";

export interface ConfigProblem {
  path: string;
  message: string;
}

export function invalidConfig(source: string, issues: readonly ConfigProblem[]): ColdtraceError {
  return new ColdtraceError(
    "CT_CFG_INVALID",
    `${source}: configuration is not valid\n${issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`,
    { source, issues },
  );
}

/** Validate `input` against `schema`, or throw CT_CFG_INVALID with every problem. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, source: string): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw invalidConfig(source, describeIssues(r.error, input));
  return r.data;
}

/** The parsed content of a YAML or JSON file; CT_CFG_UNREADABLE when it cannot be read or parsed. */
export function readConfigFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ColdtraceError(
      "CT_CFG_UNREADABLE",
      `${file}: cannot read the ${what}: ${(err as Error).message}`,
      { file },
    );
  }
  try {
    return parseYaml(text);
  } catch (err) {
    throw new ColdtraceError("CT_CFG_UNREADABLE", `${file}: not valid YAML: ${(err as Error).message}`, {
      file,
    });
  }
}
