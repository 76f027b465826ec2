/** The runtime's adapter around the excursion engine: profiles from config, gap rows for storage and lots. */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { parseGatewayConfig } from "../../src/config/load.ts";
import { configuredUnitProfile, createEngine } from "../../src/excursions/module.ts";
import type { StoredReading } from "../../src/storage/types.ts";

const T0 = Date.UTC(2026, 10, 25, 0, 0, 0);
const HOUR = 3_600_000;

function reading(seq: number, observedAt: number): StoredReading {
  return {
    agentId: "pi-1",
    seq,
    siteId: "store-1",
    unitId: "fridge-1",
    probeId: "fridge-1-top",
    observedAt,
    receivedAt: observedAt,
    tempC: 5,
    quality: "ok",
    backfill: false,
  };
}

describe("runtime engine adapter", () => {
  it("merges profile overrides by kind, then by unit", () => {
    const config = parseGatewayConfig({
      profiles: {
        byKind: { fridge: { hysteresisC: 1 } },
        byUnit: { "fridge-1": { delayMs: { alert: 1000, action: 500 } } },
      },
    });
    const p = configuredUnitProfile(config, "fridge-1", "fridge");
    expect(p.hysteresisC).toBe(1);
    expect(p.delayMs).toEqual({ alert: 1000, action: 500 });
    expect(p.range).toEqual({ low: 2, high: 8 });
    expect(configuredUnitProfile(config, "fridge-9", "fridge").delayMs.alert).not.toBe(1000);
  });

  it("hands on a recording gap while the unit is still silent, up to now", () => {
    let now = T0;
    const engine = createEngine(parseGatewayConfig({}), () => now);
    engine.registerUnit({
      unitId: "fridge-1",
      siteId: "store-1",
      kind: "fridge",
      probeIds: ["fridge-1-top"],
    });
    engine.ingest(Array.from({ length: 6 }, (_, i) => reading(i + 1, T0 + i * 600_000)));
    const last = T0 + 5 * 600_000;
    now = last + HOUR;
    expect(engine.tick(now).filter((o) => o.type === "gap")).toEqual([]); // connectivity gap: open, not stored yet
    now = last + 49 * HOUR; // past the 48 h horizon with no backfill
    const gaps = engine.tick(now).flatMap((o) => (o.type === "gap" ? [o.gap] : []));
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ reason: "recording_gap", unitIds: ["fridge-1"], toObservedAt: now });
    expect(gaps[0]!.fromObservedAt).toBeGreaterThanOrEqual(T0);
    expect(gaps[0]!.fromObservedAt).toBeLessThanOrEqual(last + HOUR);
  });

  it("applies the engine section and warns about readings it sets aside, at most once a minute per unit", () => {
    let now: number;
    const lines: { msg: string; reason?: string; unitId?: string; readings?: number }[] = [];
    const log = pino({ level: "warn" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const config = parseGatewayConfig({ engine: { latenessWindowHours: 1, maxClockSkewMinutes: 5 } });
    const engine = createEngine(config, () => now, log);
    engine.registerUnit({
      unitId: "fridge-1",
      siteId: "store-1",
      kind: "fridge",
      probeIds: ["fridge-1-top"],
    });
    // 25 hours of one reading a minute: the engine drops what fell out of the window in chunks.
    now = T0 + 1500 * 60_000;
    engine.ingest(Array.from({ length: 1500 }, (_, i) => reading(10 + i, T0 + i * 60_000)));
    expect(engine.core.stats().retained).toBeLessThan(1500);
    engine.ingest([reading(2, T0 - 2 * HOUR)]); // long before the 1 h window
    engine.ingest([reading(3, T0 - 3 * HOUR)]); // again, within the minute: counted, not logged
    engine.ingest([reading(4, now + 10 * 60_000)]); // 10 min ahead of the clock, skew allows 5
    expect(engine.core.stats()).toMatchObject({ tooLate: 2, future: 1 });
    expect(lines.map((l) => [l.reason, l.unitId, l.readings])).toEqual([
      ["too_late", "fridge-1", 1],
      ["future", "fridge-1", 1],
    ]);
    now += 61_000;
    engine.ingest([reading(5, T0 - 4 * HOUR)]);
    expect(lines.at(-1)).toMatchObject({ reason: "too_late", readings: 2 });
    expect(lines.at(-1)?.msg).toContain("stored, not evaluated");
  });
});
