/**
 * Adapter from the excursion engine (gateway/src/excursions) to the ingest `EnginePort`:
 * profiles from the configuration (`profiles.byUnit` / `profiles.byKind`, partial overrides of
 * the kind's defaults, validated by the engine's `unitProfileSchema`), wall-clock `Clock`, and
 * the engine's connectivity gaps as RecordStore gap rows.
 */
import type { UnitKind } from "@coldtrace/protocol";
import type { Logger } from "pino";
import type { GatewayConfig } from "../config/schema.ts";
import {
  type ConnectivityGap,
  type EngineOutput as CoreOutput,
  ExcursionEngine,
} from "../excursions/engine.ts";
import { profileFor, type UnitProfile } from "../excursions/profiles.ts";
import type { EngineOutput, EnginePort } from "../ingest/ports.ts";
import { WarnThrottle } from "../ingest/warn-throttle.ts";
import type { GapRecordRow } from "../storage/types.ts";

/**
 * The profile of a unit: its kind's defaults, then `profiles.byKind`, then `profiles.byUnit`
 * (partial overrides). The engine and the lots module (range limits) both use this one.
 */
export function configuredUnitProfile(config: GatewayConfig, unitId: string, kind: UnitKind): UnitProfile {
  return profileFor(kind, {
    ...((config.profiles.byKind[kind] as Partial<UnitProfile> | undefined) ?? {}),
    ...((config.profiles.byUnit[unitId] as Partial<UnitProfile> | undefined) ?? {}),
  });
}

function gapRow(g: ConnectivityGap, now: number): GapRecordRow | undefined {
  // An open gap (still silent) is stored once it ends or becomes a recording gap. A recording
  // gap whose unit is still silent is stored up to now, so lots inside are held at once; when
  // the unit reports again the same gapId is stored again with its real end.
  if (g.to === null && g.state !== "recording_gap") return undefined;
  const to = g.to ?? now;
  return {
    gapId: g.gapId,
    agentId: "gateway",
    siteId: g.siteId,
    reason: g.state === "recording_gap" ? "recording_gap" : "connectivity_gap",
    unitIds: [g.unitId],
    probeIds: [],
    fromObservedAt: g.from,
    toObservedAt: to,
    fromSeq: null,
    toSeq: null,
    droppedCount: null,
    at: to,
  };
}

function adapt(outputs: readonly CoreOutput[], now: number): EngineOutput[] {
  const out: EngineOutput[] = [];
  for (const o of outputs) {
    if (o.type === "gap") {
      const row = gapRow(o.gap, now);
      if (row) out.push({ type: "gap", gap: row });
    } else {
      out.push(o);
    }
  }
  return out;
}

/** At most one "set aside" warning per unit and reason per this long; the counters see all. */
const SET_ASIDE_LOG_EVERY_MS = 60_000;

export function createEngine(
  config: GatewayConfig,
  now: () => number = Date.now,
  log?: Logger,
): EnginePort & { core: ExcursionEngine } {
  const kinds = new Map<string, UnitKind>();
  const profileOf = (unitId: string, kind: UnitKind): UnitProfile =>
    configuredUnitProfile(config, unitId, kind);
  const engineLog = log?.child({ component: "engine" });
  const setAsideWarnings = new WarnThrottle(SET_ASIDE_LOG_EVERY_MS);
  const core = new ExcursionEngine({
    clock: { now },
    unitProfile: (unitId) => {
      const kind = kinds.get(unitId);
      return kind ? profileOf(unitId, kind) : undefined;
    },
    latenessWindowMs: config.engine.latenessWindowHours * 3_600_000,
    maxRetainedPerUnit: config.engine.maxRetainedPerUnit,
    maxClockSkewMs: config.engine.maxClockSkewMinutes * 60_000,
    // Stored, but not evaluated: QA must hear of it (an agent with a wrong clock, a box whose
    // backfill came after the lateness window).
    onSetAside(readings, reason) {
      if (!engineLog || readings.length === 0) return;
      const byUnit = Map.groupBy(readings, (r) => r.unitId);
      for (const [unitId, rs] of byUnit) {
        const count = setAsideWarnings.due(`${reason}:${unitId}`, rs.length, now());
        if (count === undefined) continue;
        // A loop, not Math.min(...): a batch may hold more readings than a call takes arguments.
        let first = Number.POSITIVE_INFINITY;
        let last = Number.NEGATIVE_INFINITY;
        for (const r of rs) {
          first = Math.min(first, r.observedAt);
          last = Math.max(last, r.observedAt);
        }
        engineLog.warn(
          {
            reason,
            siteId: rs[0]?.siteId,
            unitId,
            agentId: rs[0]?.agentId,
            readings: count,
            firstObservedAt: new Date(first).toISOString(),
            lastObservedAt: new Date(last).toISOString(),
          },
          reason === "future"
            ? "readings dated ahead of the gateway clock set aside (agent clock?); stored, not evaluated"
            : "readings older than the lateness window set aside; stored, not evaluated",
        );
      }
    },
  });
  return {
    core,
    registerUnit(u) {
      kinds.set(u.unitId, u.kind);
      core.registerUnit({
        siteId: u.siteId,
        unitId: u.unitId,
        kind: u.kind,
        probeIds: u.probeIds,
        profile: profileOf(u.unitId, u.kind),
      });
    },
    ingest: (readings) => adapt(core.ingest(readings), now()),
    reportEvictedRange: (g) =>
      adapt(
        core.reportEvictedRange(
          {
            v: 1,
            agentId: g.agentId,
            gapId: g.gapId,
            reason: "outbox_evicted",
            unitIds: g.unitIds,
            probeIds: g.probeIds,
            fromObservedAt: g.fromObservedAt,
            toObservedAt: g.toObservedAt,
            fromSeq: g.fromSeq ?? 1,
            toSeq: g.toSeq ?? g.fromSeq ?? 1,
            droppedCount: g.droppedCount ?? 1,
            at: g.at,
          },
          g.siteId,
        ),
        now(),
      ),
    acknowledge: (alarmId, ack, at) => adapt(core.acknowledge(alarmId, ack, at), now()),
    tick: (t) => adapt(core.tick(t), t),
  };
}
