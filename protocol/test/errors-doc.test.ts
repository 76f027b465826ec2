import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ColdtraceError, errorCodes, errorHttpStatus, isColdtraceError } from "../src/index.ts";

describe("docs/reference/errors.md", () => {
  const doc = readFileSync(new URL("../../docs/reference/errors.md", import.meta.url), "utf8");
  const documented = [...doc.matchAll(/^## (CT_[A-Z_]+)$/gm)].map((m) => m[1]);

  it("documents every error code, and only those", () => {
    expect(documented.sort()).toEqual(Object.keys(errorCodes).sort());
  });

  it("states the HTTP status of every code that has one, and only those", () => {
    for (const code of documented) {
      const section = doc.split(`## ${code}\n`)[1]!.split("\n## ")[0]!;
      const stated = /\*\*HTTP:\*\* (\d{3})/.exec(section)?.[1];
      const status = errorHttpStatus[code as keyof typeof errorCodes];
      expect(stated === undefined ? undefined : Number(stated), code).toBe(status);
    }
  });

  it("every code has a how-to-fix", () => {
    for (const code of documented) {
      const section = doc.split(`## ${code}\n`)[1]!.split("\n## ")[0]!;
      expect(section, code).toContain("**Fix:**");
    }
  });
});

describe("ColdtraceError", () => {
  it("appends the code and keeps context", () => {
    const err = new ColdtraceError("CT_CFG_INVALID", "probes[2].unitId: must be 1–247, got 0", {
      file: "a.yaml",
    });
    expect(err.message).toBe("probes[2].unitId: must be 1–247, got 0 (CT_CFG_INVALID)");
    expect(err.context).toEqual({ file: "a.yaml" });
    expect(isColdtraceError(err, "CT_CFG_INVALID")).toBe(true);
    expect(isColdtraceError(err, "CT_WIRE_INVALID")).toBe(false);
    expect(isColdtraceError(new Error("x"))).toBe(false);
  });
});
