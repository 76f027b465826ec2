/** What every edge-agent benchmark writes: the machine line, and its own section of docs/benchmarks.md. */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";

/** CPU, RAM, OS, Node and the commit measured. */
export function machine(): string {
  const cpus = os.cpus();
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"]).toString().trim();
  } catch {}
  return `${cpus[0]?.model ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, ${os.type()} ${os.release()} ${os.arch()}, Node ${process.version}, commit ${commit}`;
}

/** Replaces the section under `heading` (up to the next `## `), or appends it. */
export function writeSection(heading: string, body: string): void {
  const file = new URL("../../docs/benchmarks.md", import.meta.url);
  const doc = readFileSync(file, "utf8");
  const start = doc.indexOf(heading);
  let next: string;
  if (start === -1) next = `${doc.trimEnd()}\n\n${heading}\n\n${body}\n`;
  else {
    const after = doc.indexOf("\n## ", start + heading.length);
    next = `${doc.slice(0, start)}${heading}\n\n${body}\n${after === -1 ? "" : doc.slice(after)}`;
  }
  writeFileSync(file, next);
}
