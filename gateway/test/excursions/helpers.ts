/** Test helpers for the excursion engine: a fake clock, reading builders, contract checks. */
import { encodePayload, type Quality } from "@coldtrace/protocol";
import { expect } from "vitest";
import { type EngineOutput, type EngineReading, ExcursionEngine } from "../../src/excursions/engine.ts";
import type { UnitProfile } from "../../src/kernel/profiles.ts";

export const MIN = 60_000;
export const HOUR = 60 * MIN;
export const T0 = Date.UTC(2026, 2, 1, 8, 0, 0);

/** Gateway clock: well after every reading of the tests unless a test moves it. */
export class FakeClock {
  t = T0 + 400 * 24 * HOUR;
  now(): number {
    return this.t;
  }
}

export function makeEngine(
  opts: {
    profile?: UnitProfile;
    latenessWindowMs?: number;
    maxRetainedPerUnit?: number;
    checkpointEvery?: number;
    onSetAside?: (r: readonly EngineReading[], reason: "too_late" | "future" | "untrusted_time") => void;
  } = {},
) {
  const clock = new FakeClock();
  const engine = new ExcursionEngine({
    clock,
    unitProfile: () => opts.profile,
    ...(opts.latenessWindowMs !== undefined ? { latenessWindowMs: opts.latenessWindowMs } : {}),
    ...(opts.checkpointEvery !== undefined ? { checkpointEvery: opts.checkpointEvery } : {}),
    ...(opts.maxRetainedPerUnit !== undefined ? { maxRetainedPerUnit: opts.maxRetainedPerUnit } : {}),
    ...(opts.onSetAside ? { onSetAside: opts.onSetAside } : {}),
  });
  return { clock, engine };
}

let seq = 1;
/** A reading `min` minutes after T0. */
export function r(
  min: number,
  tempC: number | null,
  o: { probeId?: string; unitId?: string; quality?: Quality } = {},
): EngineReading {
  return {
    siteId: "site-1",
    unitId: o.unitId ?? "fridge-1",
    probeId: o.probeId ?? "p1",
    agentId: "agent-1",
    seq: seq++,
    observedAt: T0 + Math.round(min * MIN),
    tempC: o.quality && o.quality !== "ok" ? null : tempC,
    quality: o.quality ?? "ok",
  };
}

/** Readings every `stepMin` minutes from `fromMin`, one per value. */
export function series(
  fromMin: number,
  stepMin: number,
  temps: number[],
  o: { probeId?: string; unitId?: string } = {},
) {
  return temps.map((c, i) => r(fromMin + i * stepMin, c, o));
}

/** Every output must be a valid contract payload; returns them for inspection. */
export function checked(outputs: EngineOutput[]): EngineOutput[] {
  for (const o of outputs) {
    if (o.type === "alarm") expect(() => encodePayload("alarm", o.event)).not.toThrow();
    if (o.type === "excursion") expect(() => encodePayload("excursion", o.event)).not.toThrow();
  }
  return outputs;
}

export const alarmsOf = (outs: EngineOutput[]) => outs.flatMap((o) => (o.type === "alarm" ? [o.event] : []));
export const excursionsOf = (outs: EngineOutput[]) =>
  outs.flatMap((o) => (o.type === "excursion" ? [o.event] : []));
export const gapsOf = (outs: EngineOutput[]) => outs.flatMap((o) => (o.type === "gap" ? [o.gap] : []));

export const at = (min: number) => T0 + min * MIN;
