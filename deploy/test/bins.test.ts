/**
 * The commands' launchers (`coldtrace-gateway`, `coldtrace-agent`, `coldtrace-sim`): on a Node
 * that cannot run TypeScript they say what is needed and how to get it, instead of dying with
 * ERR_UNKNOWN_FILE_EXTENSION; on one that can, they run the command. Node 24 with type
 * stripping turned off stands in for an old Node (the check is the same: process.features).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");
const bins = ["gateway", "edge-agent", "simulators"].flatMap((ws) => {
  const pkg = JSON.parse(readFileSync(path.join(root, ws, "package.json"), "utf8")) as {
    bin: Record<string, string>;
  };
  return Object.entries(pkg.bin).map(([name, file]) => [name, path.join(root, ws, file)] as const);
});

describe("command launchers", () => {
  it("every workspace command goes through a launcher", () => {
    expect(bins.map(([name]) => name).sort()).toEqual([
      "coldtrace-agent",
      "coldtrace-gateway",
      "coldtrace-sim",
    ]);
    for (const [, file] of bins) expect(file).toMatch(/\/bin\/coldtrace-[a-z]+\.mjs$/);
  });

  it.each(bins)("%s on a Node without type stripping: a clear message, exit 1", (name, file) => {
    const r = spawnSync(process.execPath, ["--no-experimental-strip-types", file, "--help"], {
      encoding: "utf8",
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${name}: needs Node.js 22.18 or later`);
    expect(r.stderr).toContain(". scripts/ensure-node.sh");
    expect(r.stderr).not.toContain("ERR_UNKNOWN_FILE_EXTENSION");
  });

  it.each(bins)("%s on this Node: runs the command (--help)", (name, file) => {
    const r = spawnSync(process.execPath, [file, "--help"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(`${r.stdout}${r.stderr}`).toContain(name);
  });
});
