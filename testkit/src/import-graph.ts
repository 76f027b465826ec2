/**
 * The import graph of the repository's TypeScript, for the layout tests: which file imports
 * which, and the cycles in it. Imports are read with TypeScript's own `ts.preProcessFile`
 * (static imports, `import type`, `export … from`, literal dynamic imports); relative
 * specifiers and the workspace packages (`@coldtrace/protocol`, `@coldtrace/gateway/storage`
 * through each package.json `exports`) become edges, npm libraries do not.
 *
 *   importCycles(importGraph(root, workspacesOf(root)))   [] when there is no circle
 *
 * Type-only imports count: a circle of types is still a circle a reader has to untangle.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import ts from "typescript";

export type ImportGraph = Map<string, string[]>;

const SKIP = new Set(["node_modules", ".git", "dist", "coverage"]);

function tsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) tsFiles(p, out);
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** Workspace package names → { subpath → file }, from each package.json `exports`. */
function workspacePackages(root: string, workspaces: readonly string[]): Map<string, Map<string, string>> {
  const packages = new Map<string, Map<string, string>>();
  for (const ws of workspaces) {
    const file = path.join(root, ws, "package.json");
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, "utf8")) as { name: string; exports?: Record<string, unknown> };
    const entries = new Map<string, string>();
    for (const [sub, target] of Object.entries(pkg.exports ?? {})) {
      if (typeof target === "string") entries.set(sub, path.join(root, ws, target));
    }
    packages.set(pkg.name, entries);
  }
  return packages;
}

function resolve(from: string, spec: string, packages: Map<string, Map<string, string>>): string | undefined {
  if (spec.startsWith(".")) return path.resolve(path.dirname(from), spec);
  for (const [name, entries] of packages) {
    if (spec === name) return entries.get(".");
    if (spec.startsWith(`${name}/`)) return entries.get(`./${spec.slice(name.length + 1)}`);
  }
  return undefined; // an npm library or a node: builtin
}

/** Every .ts file of the workspaces (relative to `root`) and the repository files it imports. */
export function importGraph(root: string, workspaces: readonly string[]): ImportGraph {
  const packages = workspacePackages(root, workspaces);
  const graph: ImportGraph = new Map();
  for (const ws of workspaces) {
    const dir = path.join(root, ws);
    if (!existsSync(dir)) continue;
    for (const file of tsFiles(dir)) {
      const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
      const targets = new Set<string>();
      for (const { fileName } of info.importedFiles) {
        const target = resolve(file, fileName, packages);
        if (target && existsSync(target)) targets.add(path.relative(root, target));
      }
      graph.set(path.relative(root, file), [...targets].sort());
    }
  }
  return graph;
}

/** The cycles of the graph: its strongly connected components with more than one file, or a file importing itself (Tarjan). */
export function importCycles(graph: ImportGraph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

/** The workspaces of the root package.json. */
export function workspacesOf(root: string): string[] {
  return (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { workspaces: string[] })
    .workspaces;
}
