/**
 * Every setting validated at load, profiles included, every problem listed at once; the
 * settings tables of docs/integrator/gateway-config.md generated from the schema's descriptions
 * and defaults, and kept in step with it.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { markedSections, settingsSections, withSettingsTables } from "../../src/config/docs.ts";
import { parseGatewayConfig } from "../../src/config/load.ts";

const invalid = (value: unknown) => {
  try {
    parseGatewayConfig(value, "test.yaml");
  } catch (err) {
    return err as { code: string; message: string; context: { issues: { path: string; message: string }[] } };
  }
  throw new Error("expected CT_CFG_INVALID");
};

describe("profiles are checked at load", () => {
  it("lists every problem of every profile at once, with its path", () => {
    const err = invalid({
      profiles: {
        byKind: { fridge: { hysteresis: 1 }, fridgee: {} },
        byUnit: {
          "fridge-2": { alert: { high: 7 } },
          "fridge-3": { delayMs: { alert: "15 min", action: 1 } },
        },
      },
    });
    expect(err.code).toBe("CT_CFG_INVALID");
    const paths = err.context.issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "profiles.byKind.fridge",
        "profiles.byKind",
        "profiles.byUnit.fridge-3.delayMs.alert",
      ]),
    );
    expect(err.message).toContain('Unrecognized key: "hysteresis"');
    expect(err.message).toContain('Unrecognized key: "fridgee"');
  });

  it("checks a unit's limits across them: for its kind when named, else for every kind", () => {
    const err = invalid({ profiles: { byUnit: { "fridge-2": { alert: { high: 7 } } } } });
    expect(err.context.issues).toEqual([
      {
        path: "profiles.byUnit.fridge-2.alert.high",
        message: "must not be inside range.high (for a fridge unit; add `kind` if this unit is another kind)",
      },
    ]);
    // A freezer's limits, without `kind`, do not fit a fridge; with it they are checked as a freezer's.
    const freezer = { alert: { high: -18 }, action: { high: -12 } };
    expect(invalid({ profiles: { byUnit: { "freezer-1": freezer } } }).message).toContain(
      "for a fridge unit",
    );
    const cfg = parseGatewayConfig({
      profiles: { byUnit: { "freezer-1": { ...freezer, kind: "freezer" } } },
    });
    expect(cfg.profiles.byUnit["freezer-1"]?.alert).toEqual({ high: -18 });
    // A setting valid for every kind needs no kind; byKind merges under byUnit.
    expect(() =>
      parseGatewayConfig({
        profiles: { byKind: { fridge: { hysteresisC: 1 } }, byUnit: { u1: { hysteresisC: 1.5 } } },
      }),
    ).not.toThrow();
  });

  it("reads the deprecated lots.outboxRetentionMs when outbox.retentionMs is not set", () => {
    expect(parseGatewayConfig({ lots: { outboxRetentionMs: 3_600_000 } }).outbox.retentionMs).toBe(3_600_000);
    expect(
      parseGatewayConfig({ lots: { outboxRetentionMs: 3_600_000 }, outbox: { retentionMs: 7_200_000 } })
        .outbox.retentionMs,
    ).toBe(7_200_000);
  });
});

describe("docs/integrator/gateway-config.md", () => {
  const page = readFileSync(new URL("../../../docs/integrator/gateway-config.md", import.meta.url), "utf8");

  it("has the settings tables the schema generates (npm run docs:config after a schema change)", () => {
    expect(markedSections(page).sort()).toEqual([...settingsSections].sort());
    expect(withSettingsTables(page)).toBe(page);
  });
});
