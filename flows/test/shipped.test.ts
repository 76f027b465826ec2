/**
 * What this package ships, checked as shipped: the flow files hold no host, address or secret
 * (only `${VAR}` names, each documented in README.md), every property a Coldtrace node has in
 * a flow file is one its editor definition knows, the example configurations are valid, and
 * the standalone settings file refuses to start without its credential secret.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadHoldsMapping } from "../src/erp/holds.ts";
import { loadEscalationConfig } from "../src/escalation/config.ts";
import { flowsDir } from "./harness/node-red.ts";

const read = (f: string) => readFileSync(path.join(flowsDir, f), "utf8");
const flows = ["escalation/flows.json", "erp-bridge/flows.json"];
const pkg = JSON.parse(read("package.json")) as { "node-red": { nodes: Record<string, string> } };
const ours = Object.keys(pkg["node-red"].nodes);

describe("shipped flow files", () => {
  for (const file of flows) {
    it(`${file}: configuration only through documented environment variables`, () => {
      const text = read(file);
      const nodes = JSON.parse(text) as Array<Record<string, unknown>>;
      expect(text).not.toMatch(/[a-z]+:\/\/|\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/i);
      expect(nodes.some((n) => "credentials" in n)).toBe(false);
      const vars = [...new Set([...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!))];
      expect(vars.length).toBeGreaterThan(5);
      const readme = read("README.md");
      const undocumented = vars.filter((v) => !readme.includes(v));
      expect(undocumented).toEqual([]);
    });

    it(`${file}: Coldtrace nodes carry only properties their editor knows`, () => {
      for (const n of JSON.parse(read(file)) as Array<Record<string, unknown>>) {
        const type = String(n.type);
        if (!ours.includes(type)) continue;
        const html = read(pkg["node-red"].nodes[type]!.replace(/\.js$/, ".html"));
        const defaults = JSON.parse(/defaults: (\{.*\}),\n/.exec(html)![1]!) as Record<string, unknown>;
        const props = Object.keys(n).filter((k) => !["id", "type", "z", "x", "y", "wires", "g"].includes(k));
        expect(
          props.filter((p) => !(p in defaults)),
          `${n.id} (${type})`,
        ).toEqual([]);
      }
    });
  }

  it("example configurations are valid", () => {
    const c = loadEscalationConfig(path.join(flowsDir, "escalation/escalation.example.yaml"));
    expect(c.site("store-12").tiers).toHaveLength(3);
    expect(loadHoldsMapping(path.join(flowsDir, "erp-bridge/holds.example.yaml")).fields).toMatchObject({
      lotId: "batchNo",
    });
  });

  it("settings.cjs loads the Coldtrace nodes from this folder and needs its credential secret", () => {
    const require = createRequire(import.meta.url);
    const file = path.join(flowsDir, "settings.cjs");
    const saved = process.env.COLDTRACE_NODE_RED_CREDENTIAL_SECRET;
    try {
      delete process.env.COLDTRACE_NODE_RED_CREDENTIAL_SECRET;
      delete require.cache[file];
      expect(() => require(file)).toThrow(/COLDTRACE_NODE_RED_CREDENTIAL_SECRET is not set/);
      process.env.COLDTRACE_NODE_RED_CREDENTIAL_SECRET = "s3cret";
      delete require.cache[file];
      const settings = require(file) as {
        nodesDir: string[];
        credentialSecret: string;
        telemetry: { enabled: boolean };
      };
      expect(settings).toMatchObject({
        nodesDir: [flowsDir],
        credentialSecret: "s3cret",
        telemetry: { enabled: false },
      });
    } finally {
      if (saved === undefined) delete process.env.COLDTRACE_NODE_RED_CREDENTIAL_SECRET;
      else process.env.COLDTRACE_NODE_RED_CREDENTIAL_SECRET = saved;
    }
  });
});
