/**
 * The gateway's layout holds: modules never import the host that runs them, the kernel stays
 * vocabulary, and docs/development.md's "where things live" map names every folder of
 * gateway/src and only folders that exist. (No import circle anywhere: testkit/test/import-cycles.test.ts.)
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { importGraph } from "@coldtrace/testkit/import-graph";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const SRC = "gateway/src/";
const graph = importGraph(ROOT, ["gateway", "protocol"]);
const sources = [...graph].filter(([file]) => file.startsWith(SRC));
const folderOf = (file: string) => file.slice(SRC.length).split("/")[0] as string;

/** `from → to` for every import of a gateway source file that `rule` refuses. */
function violations(rule: (from: string, to: string) => boolean): string[] {
  return sources.flatMap(([from, tos]) => tos.filter((to) => !rule(from, to)).map((to) => `${from} → ${to}`));
}

describe("gateway layout", () => {
  it("no module imports the host (app/) or the composition root (cli/)", () => {
    const hosts = new Set(["app", "cli"]);
    expect(
      violations((from, to) => {
        if (!to.startsWith(SRC) || !hosts.has(folderOf(to))) return true;
        // The host may use itself; the composition root may use the host; index.ts exports both.
        return from === `${SRC}index.ts` || folderOf(from) === "cli" || folderOf(to) === folderOf(from);
      }),
    ).toEqual([]);
  });

  it("the kernel imports only the kernel and the wire contract", () => {
    expect(
      violations(
        (from, to) =>
          folderOf(from) !== "kernel" || to.startsWith(`${SRC}kernel/`) || to.startsWith("protocol/"),
      ),
    ).toEqual([]);
  });

  it("docs/development.md maps every folder of gateway/src, and only those", () => {
    const doc = readFileSync(path.join(ROOT, "docs/development.md"), "utf8");
    const section = doc.split(/^## /m).find((s) => s.startsWith("Where things live")) ?? "";
    const mapped = [...section.matchAll(/`gateway\/src\/([a-z0-9/-]+)\/`/g)].map((m) => m[1]).sort();
    const folders: string[] = [];
    const walk = (rel: string) => {
      for (const name of readdirSync(path.join(ROOT, SRC, rel))) {
        const sub = rel ? `${rel}/${name}` : name;
        if (!statSync(path.join(ROOT, SRC, sub)).isDirectory()) continue;
        folders.push(sub);
        walk(sub);
      }
    };
    walk("");
    expect(mapped.length).toBeGreaterThan(0);
    expect(mapped).toEqual(folders.sort());
  });
});
