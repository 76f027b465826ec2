/** Every JSON example in docs/protocol.md is a valid message for the topic written above it. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type ConfigDesired, configDocumentHash, decodeMessage, parseTopic } from "../src/index.ts";

const doc = readFileSync(new URL("../../docs/protocol.md", import.meta.url), "utf8");
const blocks = [...doc.matchAll(/(<!-- example topic="([^"]+)" -->\n)?```json\n([\s\S]*?)```/g)];

describe("docs/protocol.md examples", () => {
  it("has examples, and every json block is marked with its topic", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(11);
    for (const b of blocks) expect(b[2], `json block without a topic marker:\n${b[3]}`).toBeDefined();
  });

  it("covers every topic kind", () => {
    const kinds = new Set(blocks.map((b) => parseTopic(b[2]!).kind));
    expect([...kinds].sort()).toEqual(
      [
        "agentState",
        "alarm",
        "birth",
        "configDesired",
        "configReported",
        "eligibility",
        "excursion",
        "gap",
        "gatewayState",
        "lot",
        "movement",
        "probeHealth",
        "telemetry",
      ].sort(),
    );
  });

  it.each(blocks.map((b) => [b[2]!, b[3]!]))("%s", async (topic, json) => {
    const message = decodeMessage(topic, json);
    expect(message.kind).toBe(parseTopic(topic).kind);
    // A desired configuration's hash is the real one: an agent would refuse it otherwise.
    if (message.kind === "configDesired") {
      const desired = message.payload as ConfigDesired;
      expect(desired.documentHash).toBe(await configDocumentHash(desired.config));
    }
  });
});
