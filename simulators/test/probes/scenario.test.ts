/** Scenario files parse, and the player follows them on a hand-driven clock. */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadScenario, parseScenario, playScenario } from "../../src/index.ts";

const dir = path.join(import.meta.dirname, "../../scenarios");

describe("scenario files", () => {
  it("every shipped scenario is valid", async () => {
    const files = (await readdir(dir)).filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) await expect(loadScenario(path.join(dir, f))).resolves.toHaveProperty("name");
  });

  it("reports problems with their path", () => {
    expect(() => parseScenario({ speed: -1, events: [{ kind: "door-open", at: "ten" }] }, "x.yaml")).toThrow(
      expect.objectContaining({ code: "CT_CFG_INVALID", message: expect.stringContaining("events.0.at") }),
    );
  });
});

describe("scenario player", () => {
  it("ramps after a compressor failure at accelerated speed", () => {
    let now = 0;
    const s = parseScenario({
      speed: 60,
      events: [{ kind: "compressor-failure", at: "10m", rampCPerHour: 6, maxC: 20 }],
    });
    const p = playScenario(s, { now: () => now });
    const ch = { baseC: 5, noiseC: 0 };
    now = 9_000; // 9 scenario minutes
    expect(p.tempC(ch, 1, 0)).toBe(5);
    now = 10_000 + 60_000; // 1 scenario hour after the failure
    expect(p.tempC(ch, 1, 0)).toBe(11);
    now = 10_000 + 10 * 60_000;
    expect(p.tempC(ch, 1, 0)).toBe(20);
  });

  it("targets events at one slave", () => {
    let now = 0;
    const p = playScenario(
      parseScenario({ events: [{ kind: "not-answering", at: 0, duration: "1s", slaveId: 2 }] }),
      {
        now: () => now,
      },
    );
    expect(p.active("not-answering", 2)).toBeTruthy();
    expect(p.active("not-answering", 1)).toBeUndefined();
    now = 1000;
    expect(p.active("not-answering", 2)).toBeUndefined();
  });
});
