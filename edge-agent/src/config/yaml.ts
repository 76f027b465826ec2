/**
 * Reading a YAML file with the position of every node, so a configuration problem can say
 * where it is: `line 14: buses[0].probes[1].register: …`. The `yaml` library keeps each
 * node's character range (`node.range`) and a `LineCounter` turns offsets into lines and
 * columns (eemeli/yaml docs: "Documents" → `parseDocument(…, { lineCounter })`).
 *
 *   text ─ parseDocument(lineCounter) ─┬─ errors? → CT_CFG_UNREADABLE (the parser's line/column)
 *                                      └─ toJS() + locate(path) → { line, column } of the value,
 *                                         or of the nearest enclosing node that exists
 */
import { readFileSync } from "node:fs";
import { ColdtraceError } from "@coldtrace/protocol";
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";

export interface Position {
  line: number;
  column: number;
}

export interface YamlFile {
  file: string;
  /** The document as plain data (`{}` for an empty file). */
  value: unknown;
  /** Where the value at `path` is written; for a missing key, where its parent is. */
  locate(path: readonly PropertyKey[]): Position | undefined;
}

/** Reads and parses a YAML file. Throws CT_CFG_UNREADABLE naming the file (and the line). */
export function readYamlFile(file: string): YamlFile {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ColdtraceError(
      "CT_CFG_UNREADABLE",
      `${file}: cannot read the configuration (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      { file },
    );
  }
  return parseYamlText(text, file);
}

/** Parses YAML text; `file` names it in messages. */
export function parseYamlText(text: string, file: string): YamlFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, lineCounter });
  if (doc.errors.length > 0) {
    // yaml's pretty error: "… at line 3, column 3:" then an excerpt; keep the first line.
    const lines = doc.errors.map((e) => `  ${(e.message.split("\n")[0] ?? "").replace(/:$/, "")}`);
    throw new ColdtraceError("CT_CFG_UNREADABLE", `${file}: not valid YAML:\n${lines.join("\n")}\n`, {
      file,
      issues: doc.errors.map((e) => ({ path: "", message: e.message })),
    });
  }
  const at = (offset: number | undefined): Position | undefined => {
    if (offset === undefined) return undefined;
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  return {
    file,
    value: doc.toJS() ?? {},
    locate(path) {
      let node: unknown = doc.contents;
      let where = at((doc.contents as Node | null)?.range?.[0]);
      for (const key of path) {
        if (isMap(node)) {
          const pair = node.items.find(
            (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(key),
          );
          if (!pair) break;
          // A key with no value (`register:`) has no value node: point at the key.
          where = at((pair.value as Node | null)?.range?.[0]) ?? at((pair.key as Node).range?.[0]) ?? where;
          node = pair.value;
        } else if (isSeq(node) && typeof key === "number" && node.items[key] !== undefined) {
          node = node.items[key];
          where = at((node as Node).range?.[0]) ?? where;
        } else {
          break;
        }
      }
      return where;
    },
  };
}
