/**
 * The settings tables of docs/integrator/gateway-config.md, generated from the configuration
 * schema (its descriptions and defaults are data: schema.ts). `npm run docs:config` writes
 * them between the page's `<!-- settings: … -->` markers; test/config/docs.test.ts fails when
 * the page and the schema drift apart. The prose around the tables stays hand-written.
 */
import { z } from "zod";
import { gatewayConfigSchema } from "./schema.ts";

interface JsonSchema {
  type?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
}

/** A default as the tables show it: `text`, numbers plain, objects as compact JSON; none: —. */
function shown(v: unknown): string {
  if (v === undefined) return "—";
  if (typeof v === "string") return `\`${v}\``;
  if (typeof v === "number" || typeof v === "boolean") return `\`${String(v)}\``;
  const json = JSON.stringify(v).replaceAll(",", ", ").replaceAll(":", ": ");
  return json.length > 60 ? "see below" : `\`${json}\``;
}

/** The settings of each section, as [setting, schema] rows; nested objects flattened one level. */
const sections: Record<string, (root: JsonSchema) => Array<[string, JsonSchema]>> = {
  top: (root) => [
    ["gatewayId", prop(root, "gatewayId")],
    ...rows(prop(root, "log")).map(([k, s]): [string, JsonSchema] => [`log.${k}`, s]),
  ],
  broker: (root) => rows(prop(root, "broker"), ["tls"]),
  storage: (root) => rows(prop(root, "storage")),
  ingest: (root) => rows(prop(root, "ingest")),
  engine: (root) => rows(prop(root, "engine")),
  api: (root) => rows(prop(root, "api")),
  profiles: (root) => rows(prop(root, "profiles")),
  lots: (root) => rows(prop(root, "lots")),
  "lots.policy": (root) => rows(prop(prop(root, "lots"), "policy")),
  outbox: (root) => rows(prop(root, "outbox")),
};

function prop(s: JsonSchema, key: string): JsonSchema {
  const p = s.properties?.[key];
  if (!p) throw new Error(`configuration schema has no ${key}`);
  return p;
}

function rows(s: JsonSchema, flatten: readonly string[] = []): Array<[string, JsonSchema]> {
  const out: Array<[string, JsonSchema]> = [];
  for (const [key, p] of Object.entries(s.properties ?? {})) {
    out.push([key, p]);
    if (flatten.includes(key))
      for (const [sub, q] of Object.entries(p.properties ?? {})) out.push([`${key}.${sub}`, q]);
  }
  return out;
}

/** The markdown table of one section. */
export function settingsTable(section: string): string {
  const root = z.toJSONSchema(gatewayConfigSchema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  const make = sections[section];
  if (!make) throw new Error(`no settings section ${section}`);
  const lines = ["| Setting | Default | Meaning |", "|---|---|---|"];
  for (const [key, s] of make(root)) {
    if (!s.description) throw new Error(`setting ${section}.${key} has no description in config/schema.ts`);
    lines.push(`| \`${key}\` | ${shown(s.default)} | ${s.description.replaceAll("|", "\\|")} |`);
  }
  return lines.join("\n");
}

const MARKER =
  /<!-- settings: ([a-z.]+) \(generated from gateway\/src\/config\/schema\.ts: npm run docs:config\) -->\n[\s\S]*?<!-- end settings -->/g;

/** The page with every marked table regenerated. */
export function withSettingsTables(page: string): string {
  return page.replace(
    MARKER,
    (_all, section: string) =>
      `<!-- settings: ${section} (generated from gateway/src/config/schema.ts: npm run docs:config) -->\n${settingsTable(section)}\n<!-- end settings -->`,
  );
}

/** The sections a page marks. */
export function markedSections(page: string): string[] {
  return [...page.matchAll(MARKER)].map((m) => m[1] as string);
}

export const settingsSections = Object.keys(sections);
