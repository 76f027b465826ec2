/**
 * Runnable documentation: the code blocks of README.md and docs/ that readers are told to run,
 * marked in the Markdown, and what they are documented to print (docs/runnable.md):
 *
 *   ```sh run                   run with bash (set -euo pipefail) in the repository's root
 *   ```sh run exit=2            … and expect that exit status (default 0)
 *   ```sh run background        a long-running command: passes once the output block's lines
 *                               have all appeared (in any order), then it is stopped (SIGTERM
 *                               to its process group)
 *   ```json output              right after a run block: the JSON it prints, as a pattern
 *   ```text output              right after a run block: lines it prints, in order, as patterns
 *
 * Patterns: `…` inside a string (JSON) or a line (text) stands for any text. JSON objects
 * match when every documented key matches (the real answer may have more); arrays when each
 * documented element matches the element at its place (the real one may be longer); numbers
 * by type (ids and times differ from run to run, the shape must not); strings, booleans and
 * null exactly.
 */

export interface OutputBlock {
  kind: "json" | "text";
  text: string;
  line: number;
}

export interface RunnableBlock {
  file: string;
  /** Line of the opening fence (1-based). */
  line: number;
  code: string;
  exit: number;
  background: boolean;
  output?: OutputBlock;
}

export interface Fence {
  line: number;
  info: string;
  text: string;
}

/** Every fenced code block of a Markdown text. */
export function fences(markdown: string): Fence[] {
  const lines = markdown.split("\n");
  const out: Fence[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*(`{3,}|~{3,})\s*(.*)$/.exec(lines[i] as string);
    if (!open) continue;
    const marker = open[1] as string;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !(lines[j] as string).trim().startsWith(marker); j++)
      body.push(lines[j] as string);
    out.push({ line: i + 1, info: (open[2] as string).trim(), text: body.join("\n") });
    i = j;
  }
  return out;
}

/** The marked blocks of a file; throws on a malformed marker, naming file and line. */
export function runnableBlocks(file: string, markdown: string): RunnableBlock[] {
  const all = fences(markdown);
  const lines = markdown.split("\n");
  const out: RunnableBlock[] = [];
  for (const [i, f] of all.entries()) {
    const [lang, mark, ...attrs] = f.info.split(/\s+/);
    if (mark === "output" && !out.some((b) => b.output?.line === f.line))
      throw new Error(`${file}:${f.line}: an output block must follow a \`run\` block`);
    if (mark !== "run") continue;
    if (lang !== "sh" && lang !== "bash")
      throw new Error(`${file}:${f.line}: run blocks are sh or bash, not ${lang}`);
    const block: RunnableBlock = { file, line: f.line, code: f.text, exit: 0, background: false };
    for (const a of attrs) {
      const exit = /^exit=(\d+)$/.exec(a);
      if (exit) block.exit = Number(exit[1]);
      else if (a === "background") block.background = true;
      else throw new Error(`${file}:${f.line}: unknown run attribute ${a}`);
    }
    const next = all[i + 1];
    const closing = f.line + f.text.split("\n").length + 1;
    const between = next ? lines.slice(closing, next.line - 1) : [];
    if (next && between.every((l) => l.trim() === "")) {
      const [kind, role] = next.info.split(/\s+/);
      if (role === "output") {
        if (kind !== "json" && kind !== "text")
          throw new Error(`${file}:${next.line}: output blocks are json or text, not ${kind}`);
        block.output = { kind, text: next.text, line: next.line };
      }
    }
    if (block.background && !block.output)
      throw new Error(`${file}:${f.line}: a background block needs an output block to wait for`);
    out.push(block);
  }
  return out;
}

/** A documented string with `…` wildcards against the real one. */
export function matchesText(pattern: string, actual: string): boolean {
  const parts = pattern.split("…").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join("[\\s\\S]*")}$`).test(actual);
}

/** Where the documented JSON and the real answer differ, as `path: what` lines (empty: they match). */
export function jsonMismatches(doc: unknown, actual: unknown, at = "$"): string[] {
  if (doc === null || typeof doc === "boolean") {
    return doc === actual ? [] : [`${at}: documented ${JSON.stringify(doc)}, got ${JSON.stringify(actual)}`];
  }
  if (typeof doc === "number") {
    return typeof actual === "number" ? [] : [`${at}: documented a number, got ${JSON.stringify(actual)}`];
  }
  if (typeof doc === "string") {
    return typeof actual === "string" && matchesText(doc, actual)
      ? []
      : [`${at}: documented ${JSON.stringify(doc)}, got ${JSON.stringify(actual)}`];
  }
  if (Array.isArray(doc)) {
    if (!Array.isArray(actual)) return [`${at}: documented an array, got ${JSON.stringify(actual)}`];
    if (actual.length < doc.length) return [`${at}: documented ${doc.length} items, got ${actual.length}`];
    return doc.flatMap((d, i) => jsonMismatches(d, actual[i], `${at}[${i}]`));
  }
  if (typeof actual !== "object" || actual === null || Array.isArray(actual))
    return [`${at}: documented an object, got ${JSON.stringify(actual)}`];
  return Object.entries(doc as Record<string, unknown>).flatMap(([k, v]) =>
    k in actual
      ? jsonMismatches(v, (actual as Record<string, unknown>)[k], `${at}.${k}`)
      : [`${at}.${k}: documented, missing in the answer`],
  );
}

/** Documented lines (patterns) not found in the real output: in order, or anywhere when `ordered` is false. */
export function missingLines(doc: string, actual: string, ordered = true): string[] {
  const real = actual.split("\n");
  const missing: string[] = [];
  let from = 0;
  for (const want of doc.split("\n").filter((l) => l.trim() !== "")) {
    const i = real.findIndex((l, k) => (!ordered || k >= from) && matchesText(want.trim(), l.trim()));
    if (i < 0) missing.push(want);
    else if (ordered) from = i + 1;
  }
  return missing;
}

/**
 * Every mismatch of a block's output (empty: it prints what the docs say). A background
 * block's lines may come in any order (a consumer prints what arrives as it arrives).
 */
export function outputMismatches(output: OutputBlock, stdout: string, ordered = true): string[] {
  if (output.kind === "text")
    return missingLines(output.text, stdout, ordered).map((l) => `line not printed: ${l}`);
  let doc: unknown;
  try {
    doc = JSON.parse(output.text);
  } catch (err) {
    return [`the documented JSON does not parse: ${(err as Error).message}`];
  }
  let actual: unknown;
  try {
    actual = JSON.parse(stdout);
  } catch {
    return [`the command did not print JSON: ${stdout.slice(0, 300)}`];
  }
  return jsonMismatches(doc, actual);
}
