/**
 * No import circle in any workspace (nor between them), type-only imports included. The walker
 * is checked on a small tree with a circle first, so a walker that finds nothing cannot pass.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { importCycles, importGraph, workspacesOf } from "../src/import-graph.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");

describe("import graph", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("finds a circle through a type-only import and a workspace package", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "ct-imports-"));
    dirs.push(root);
    await writeFile(path.join(root, "package.json"), JSON.stringify({ workspaces: ["a", "b"] }));
    for (const ws of ["a", "b"]) {
      await mkdir(path.join(root, ws, "src"), { recursive: true });
      await writeFile(
        path.join(root, ws, "package.json"),
        JSON.stringify({ name: `@t/${ws}`, exports: { ".": "./src/index.ts" } }),
      );
    }
    await writeFile(path.join(root, "a/src/index.ts"), 'export { b } from "@t/b";\nexport const a = 1;\n');
    await writeFile(
      path.join(root, "b/src/index.ts"),
      'import type { x } from "./x.ts";\nexport const b = 2;\n',
    );
    await writeFile(path.join(root, "b/src/x.ts"), 'import { a } from "@t/a";\nexport type x = typeof a;\n');
    await writeFile(path.join(root, "b/src/leaf.ts"), 'import { z } from "zod";\nexport const y = z;\n');
    const graph = importGraph(root, workspacesOf(root));
    expect(graph.get("b/src/leaf.ts")).toEqual([]); // npm libraries are not edges
    expect(importCycles(graph)).toEqual([["a/src/index.ts", "b/src/index.ts", "b/src/x.ts"]]);
  });

  it("the repository has no import cycle", () => {
    const graph = importGraph(ROOT, [...workspacesOf(ROOT), "scripts"]);
    expect(graph.size).toBeGreaterThan(100);
    expect(importCycles(graph)).toEqual([]);
  });
});
