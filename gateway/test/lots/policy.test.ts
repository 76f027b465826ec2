/** The quarantine policy: validation of its configuration and the decision per rule. */
import { describe, expect, it } from "vitest";
import { decide, defaultPolicy, parsePolicy } from "../../src/lots/index.ts";

const base = {
  cause: "excursion" as const,
  tier: "alert" as const,
  peakC: 9,
  troughC: 4,
  doNotFreeze: false,
  absoluteMinC: null,
  absoluteMaxC: null,
  remaining: { high: 30, low: null },
};

describe("quarantine policy", () => {
  it("reports every bad key with its path (CT_CFG_INVALID)", () => {
    expect(() =>
      parsePolicy({ quarantineOnActionExcursion: "yes", freezeThresholdC: "0", extra: 1 }),
    ).toThrow(
      expect.objectContaining({
        code: "CT_CFG_INVALID",
        message: expect.stringMatching(
          /quarantineOnActionExcursion: .*freezeThresholdC: .*Unrecognized key/s,
        ),
      }),
    );
    expect(parsePolicy(undefined)).toEqual(defaultPolicy);
  });

  it("flags an alert-level excursion by default, and quarantines it when configured", () => {
    expect(decide(defaultPolicy, base, "exc-1")).toEqual({
      action: "flag",
      reasons: ["alert-level excursion exc-1 touched the lot"],
    });
    const strict = parsePolicy({ quarantineOnAlertExcursion: true });
    expect(decide(strict, base, "exc-1").action).toBe("quarantine");
  });

  it("quarantines on action level, budget exceeded, freeze of a do-not-freeze product, absolute limits, gaps", () => {
    expect(decide(defaultPolicy, { ...base, tier: "action" }, "e").action).toBe("quarantine");
    const budget = decide(defaultPolicy, { ...base, remaining: { high: -12.5, low: null } }, "e");
    expect(budget).toMatchObject({ action: "quarantine" });
    expect(budget.reasons).toContain("stability budget (high) exceeded by 12.5 min");
    const freeze = decide(defaultPolicy, { ...base, troughC: -0.5, doNotFreeze: true }, "e");
    expect(freeze.action).toBe("quarantine");
    expect(freeze.reasons.join(" ")).toContain("do-not-freeze product reached -0.5 °C");
    expect(decide(defaultPolicy, { ...base, absoluteMaxC: 8.5 }, "e").action).toBe("quarantine");
    expect(
      decide(defaultPolicy, { ...base, cause: "gap", tier: undefined } as never, "gap-1").reasons,
    ).toEqual(["recording gap gap-1 while the lot was inside: exposure unknown"]);
    const lenient = parsePolicy({ quarantineOnRecordingGap: false, flagOtherwise: false });
    expect(decide(lenient, { ...base, cause: "gap" }, "gap-1").action).toBe("none");
  });
});
