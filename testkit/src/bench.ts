/**
 * Benchmark reporting: the machine a figure was measured on, and writing one benchmark's own
 * section of docs/benchmarks.md (from its `## ` heading to the next), leaving the others alone.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";

/** "2026-12-01, commit 1a2b3c4, Intel(R) Xeon(R) × 2 cores, 24 GiB RAM, Node v24.22.3, linux 6.x" */
export function machineLine(cwd = process.cwd()): string {
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd, encoding: "utf8" }).trim();
  } catch {
    // not a git checkout
  }
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  const gib = Math.round(os.totalmem() / 2 ** 30);
  const date = new Date().toISOString().slice(0, 10);
  return `${date}, commit ${commit}, ${cpu} × ${os.cpus().length} cores, ${gib} GiB RAM, Node ${process.version}, ${os.type().toLowerCase()} ${os.release()}`;
}

/** Replace the section under `heading` (e.g. "## Console (bench:console)") or append it. */
export function writeBenchmarkSection(file: string | URL, heading: string, body: string): void {
  const doc = readFileSync(file, "utf8");
  const section = `${heading}\n\n${body.trim()}\n`;
  const start = doc.indexOf(`${heading}\n`);
  let next: string;
  if (start === -1) {
    next = `${doc.trimEnd()}\n\n${section}`;
  } else {
    const after = doc.indexOf("\n## ", start + heading.length);
    next = doc.slice(0, start) + section + (after === -1 ? "" : doc.slice(after));
  }
  writeFileSync(file, next);
}
