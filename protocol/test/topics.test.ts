import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatTopic, isColdtraceError, parseTopic, type Topic, topicRules } from "../src/index.ts";

const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,20}$/);
const lot = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/\p{Cc}/u.test(s));

const topicArb: fc.Arbitrary<Topic> = fc.oneof(
  fc.record({ kind: fc.constant("telemetry" as const), siteId: id, agentId: id, unitId: id }),
  fc.record({
    kind: fc.constantFrom("birth", "agentState", "probeHealth", "gap" as const),
    siteId: id,
    agentId: id,
  }),
  fc.record({ kind: fc.constant("movement" as const), siteId: id }),
  fc.record({ kind: fc.constantFrom("alarm", "excursion" as const), siteId: id, unitId: id }),
  fc.record({ kind: fc.constantFrom("lot", "eligibility" as const), siteId: id, lotId: lot }),
  fc.record({ kind: fc.constant("gatewayState" as const), gatewayId: id }),
);

describe("topics", () => {
  it("parseTopic(formatTopic(x)) returns x for every kind", () => {
    fc.assert(
      fc.property(topicArb, (t) => {
        expect(parseTopic(formatTopic(t))).toEqual(t);
      }),
    );
  });

  it("never puts a wildcard or an extra level into a topic, whatever the lot number", () => {
    fc.assert(
      fc.property(id, lot, (siteId, lotId) => {
        const topic = formatTopic({ kind: "eligibility", siteId, lotId });
        expect(topic.split("/")).toHaveLength(5);
        expect(topic).not.toMatch(/[+#]/);
      }),
    );
  });

  it("builds the documented tree", () => {
    expect(formatTopic({ kind: "telemetry", siteId: "s1", agentId: "a1", unitId: "u1" })).toBe(
      "ct/v1/s1/agent/a1/telemetry/u1",
    );
    expect(formatTopic({ kind: "agentState", siteId: "s1", agentId: "a1" })).toBe("ct/v1/s1/agent/a1/state");
    expect(formatTopic({ kind: "lot", siteId: "s1", lotId: "L 1/2" })).toBe("ct/v1/s1/events/lot/L%201%2F2");
    expect(formatTopic({ kind: "gatewayState", gatewayId: "gw" })).toBe("ct/v1/_gateway/gw/state");
  });

  it("refuses ids that would break the tree, naming the field", () => {
    expect(() => formatTopic({ kind: "telemetry", siteId: "s1", agentId: "a/1", unitId: "u1" })).toThrow(
      expect.objectContaining({
        code: "CT_TOPIC_SEGMENT",
        message: expect.stringContaining('agentId "a/1"'),
      }),
    );
    expect(() => formatTopic({ kind: "movement", siteId: "+" })).toThrow(
      expect.objectContaining({ code: "CT_TOPIC_SEGMENT" }),
    );
  });

  it.each([
    ["ct/v2/s1/movements", "not under ct/v1/"],
    ["ct/v1/s1/agent/a1/telemetry", "expected 7 levels, found 6"],
    ["ct/v1/s1/agent/a1/birth/extra", "expected 6 levels"],
    ["ct/v1/s1/agent/a1/bogus", 'unknown agent topic "bogus"'],
    ["ct/v1/s1/events/lot/%E0%A4%A", "not valid percent-encoding"],
    ["ct/v1/s 1/movements", 'siteId "s 1"'],
    ["ct/v1/_gateway/gw/other", 'unknown gateway topic "other"'],
  ])("rejects %s", (topic, why) => {
    let caught: unknown;
    try {
      parseTopic(topic);
    } catch (err) {
      caught = err;
    }
    expect(isColdtraceError(caught, "CT_TOPIC_INVALID")).toBe(true);
    expect((caught as Error).message).toContain(why);
  });

  it("never retains readings", () => {
    expect(topicRules.telemetry.retain).toBe(false);
    expect(topicRules.eligibility.retain).toBe(true);
    expect(topicRules.agentState.retain).toBe(true);
  });
});
