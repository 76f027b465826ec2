/** The agent's documentHash (node:crypto) is the protocol's configDocumentHash (Web Crypto). */
import { agentConfigSchema, configDocumentHash } from "@coldtrace/protocol";
import { describe, expect, it } from "vitest";
import { documentHash } from "../../src/remote/hash.ts";
import { validConfig } from "../helpers/config.ts";

describe("documentHash", () => {
  it("equals configDocumentHash, and does not depend on key order", async () => {
    const parsed = agentConfigSchema.parse(validConfig());
    expect(documentHash(parsed)).toBe(await configDocumentHash(parsed));
    const reordered = Object.fromEntries(Object.entries(parsed).reverse()) as typeof parsed;
    expect(documentHash(reordered)).toBe(documentHash(parsed));
    expect(documentHash({ ...parsed, units: [] })).not.toBe(documentHash(parsed));
  });
});
