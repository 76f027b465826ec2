/**
 * The excursions module: the event-time `ExcursionEngine` (engine.ts) as a gateway extension.
 * It resolves unit profiles from the configuration, adapts the engine to ingest's `EnginePort`
 * and reports the engine's figures to /metrics.
 *
 *   profiles: kind defaults (kernel/profiles.ts) ← profiles.byKind ← profiles.byUnit
 *             (partial overrides, validated by `unitProfileSchema`) ─▶ engine, UnitDirectory.profile
 *   ingest ─ EnginePort ─▶ ExcursionEngine (units from the UnitDirectory, the gateway's Clock)
 *   engine connectivity gaps ─▶ GapRecordRow (stored by ingest, seen by lots)
 *   /metrics ◀─ retained readings, readings set aside (too late, future, untrusted agent clock)
 */
import type { UnitKind } from "@coldtrace/protocol";
import type { Logger } from "pino";
import type { GatewayConfig } from "../config/schema.ts";
import type { ExtensionFactory } from "../extension/extension.ts";
import type { EnginePort } from "../ingest/ports.ts";
import type { DomainEvent, GapRecordRow } from "../kernel/events.ts";
import { profileFor, type UnitProfile } from "../kernel/profiles.ts";
import { type UnitDirectory, UnitRegistry } from "../kernel/units.ts";
import { WarnThrottle } from "../kernel/warn-throttle.ts";
import { type ConnectivityGap, type EngineOutput, ExcursionEngine } from "./engine.ts";

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

function adapt(outputs: readonly EngineOutput[], now: number): DomainEvent[] {
  const out: DomainEvent[] = [];
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

/**
 * The engine behind ingest's port. `units`: the gateway's unit directory, which the host fills
 * before it registers a unit here; without one (tests) the adapter keeps its own.
 */
export function createEngine(
  config: GatewayConfig,
  now: () => number = Date.now,
  log?: Logger,
  units?: UnitDirectory,
): EnginePort & { core: ExcursionEngine } {
  const own = units ? undefined : new UnitRegistry();
  const directory: UnitDirectory = units ?? (own as UnitRegistry);
  const profileOf = (unitId: string, kind: UnitKind): UnitProfile =>
    configuredUnitProfile(config, unitId, kind);
  const engineLog = log?.child({ component: "engine" });
  const setAsideWarnings = new WarnThrottle(SET_ASIDE_LOG_EVERY_MS);
  const core = new ExcursionEngine({
    clock: { now },
    unitProfile: (unitId) => {
      const unit = directory.get(unitId);
      return unit ? profileOf(unitId, unit.kind) : undefined;
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
            : reason === "untrusted_time"
              ? "readings taken while the agent's clock was not synchronised set aside; stored, not evaluated"
              : "readings older than the lateness window set aside; stored, not evaluated",
        );
      }
    },
  });
  return {
    core,
    registerUnit(u) {
      own?.register(u);
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

/**
 * The excursions extension: the engine for ingest, unit profiles for the directory, engine
 * figures for /metrics.
 */
export function excursionsExtension(): ExtensionFactory {
  return (ctx) => {
    const engine = createEngine(ctx.config, () => ctx.clock.now(), ctx.log, ctx.units);
    return {
      name: "excursions",
      engine,
      unitProfile: (unitId, kind) => configuredUnitProfile(ctx.config, unitId, kind),
      metrics() {
        const stats = engine.core.stats(); // walks every unit: once per scrape
        return {
          gauges: { coldtrace_engine_retained_readings: stats.retained },
          counters: {
            'coldtrace_engine_readings_set_aside_total{reason="too_late"}': stats.tooLate,
            'coldtrace_engine_readings_set_aside_total{reason="future"}': stats.future,
            'coldtrace_engine_readings_set_aside_total{reason="untrusted_time"}': stats.untrustedTime,
          },
        };
      },
    };
  };
}
