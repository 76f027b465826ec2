/** The runnable-docs markers and output patterns (docs/test/runnable.ts), on small inputs. */
import { describe, expect, it } from "vitest";
import { jsonMismatches, matchesText, missingLines, outputMismatches, runnableBlocks } from "./runnable.ts";

const page = [
  "# Page",
  "",
  "```sh run",
  'curl -s "$COLDTRACE_API/health"',
  "```",
  "",
  "```json output",
  '{ "status": "ok" }',
  "```",
  "",
  "```sh",
  "not run",
  "```",
  "",
  "```sh run exit=2 ",
  "coldtrace-gateway bogus",
  "```",
  "",
  "```sh run background",
  "npx coldtrace-sim planner",
  "```",
  "```text output",
  "planner: subscribed …",
  "```",
].join("\n");

describe("runnable blocks", () => {
  it("finds the marked blocks, their attributes and the output blocks after them", () => {
    const blocks = runnableBlocks("page.md", page);
    expect(blocks.map((b) => [b.line, b.code, b.exit, b.background, b.output?.kind])).toEqual([
      [3, 'curl -s "$COLDTRACE_API/health"', 0, false, "json"],
      [15, "coldtrace-gateway bogus", 2, false, undefined],
      [19, "npx coldtrace-sim planner", 0, true, "text"],
    ]);
  });

  it("refuses markers it does not know, with file and line", () => {
    expect(() => runnableBlocks("a.md", "```sh run twice\nx\n```")).toThrow(
      "a.md:1: unknown run attribute twice",
    );
    expect(() => runnableBlocks("a.md", "```python run\nx\n```")).toThrow(
      "a.md:1: run blocks are sh or bash",
    );
    expect(() => runnableBlocks("a.md", "```json output\n{}\n```")).toThrow(
      "a.md:1: an output block must follow",
    );
    expect(() => runnableBlocks("a.md", "```sh run background\nx\n```")).toThrow("needs an output block");
  });
});

describe("output patterns", () => {
  it("… stands for any text, nothing else is loose", () => {
    expect(matchesText("fridge-2.temp.h.action.…", "fridge-2.temp.h.action.mih0s6o0")).toBe(true);
    expect(matchesText("token: ct_…", "token: ct_abc")).toBe(true);
    expect(matchesText("a.b", "axb")).toBe(false);
    expect(matchesText("exact", "exactly")).toBe(false);
  });

  it("JSON: documented keys must be there with matching values; numbers by type", () => {
    expect(
      jsonMismatches({ a: 1, b: "x", c: [{ d: true }] }, { a: 2, b: "x", c: [{ d: true, e: 1 }, {}], z: 0 }),
    ).toEqual([]);
    expect(
      jsonMismatches({ statusCode: 400, error: "Bad Request" }, { code: "CT_LOT_INVALID", message: "m" }),
    ).toEqual([
      "$.statusCode: documented, missing in the answer",
      "$.error: documented, missing in the answer",
    ]);
    expect(jsonMismatches([{}, {}], [{}])).toEqual(["$: documented 2 items, got 1"]);
    expect(jsonMismatches({ n: 1 }, { n: "1" })).toEqual(['$.n: documented a number, got "1"']);
    expect(jsonMismatches({ ok: false }, { ok: true })).toEqual(["$.ok: documented false, got true"]);
  });

  it("text: documented lines in order, others may come between", () => {
    expect(missingLines("first\nthird …", "first\nsecond\nthird line")).toEqual([]);
    expect(missingLines("third\nfirst", "first\nsecond\nthird")).toEqual(["first"]);
    expect(outputMismatches({ kind: "json", text: "{}", line: 1 }, "not json")[0]).toMatch(
      /did not print JSON/,
    );
  });
});
