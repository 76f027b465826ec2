/**
 * Adapter from the excursion engine (gateway/src/excursions) to the ingest `EnginePort`:
 * profiles from the configuration (`profiles.byUnit` / `profiles.byKind`, partial overrides of
 * the kind's defaults, validated by the engine's `unitProfileSchema`), wall-clock `Clock`, and
 * the engine's connectivity gaps as RecordStore gap rows.
 */
import type { UnitKind } from "@coldtrace/protocol";
import type { GatewayConfig } from "../config/schema.ts";
import {
  type ConnectivityGap,
  type EngineOutput as CoreOutput,
  ExcursionEngine,
} from "../excursions/engine.ts";
import { profileFor, type UnitProfile } from "../excursions/profiles.ts";
import type { EngineOutput, EnginePort } from "../ingest/ports.ts";
import type { GapRecordRow } from "../storage/types.ts";

function gapRow(g: ConnectivityGap): GapRecordRow | undefined {
  // An open gap (still silent) is stored once it ends or becomes a recording gap.
  if (g.to === null) return undefined;
  return {
    gapId: g.gapId,
    agentId: "gateway",
    siteId: g.siteId,
    reason: g.state === "recording_gap" ? "recording_gap" : "connectivity_gap",
    unitIds: [g.unitId],
    probeIds: [],
    fromObservedAt: g.from,
    toObservedAt: g.to,
    fromSeq: null,
    toSeq: null,
    droppedCount: null,
    at: g.to,
  };
}

function adapt(outputs: readonly CoreOutput[]): EngineOutput[] {
  const out: EngineOutput[] = [];
  for (const o of outputs) {
    if (o.type === "gap") {
      const row = gapRow(o.gap);
      if (row) out.push({ type: "gap", gap: row });
    } else {
      out.push(o);
    }
  }
  return out;
}

export function createEngine(
  config: GatewayConfig,
  now: () => number = Date.now,
): EnginePort & { core: ExcursionEngine } {
  const kinds = new Map<string, UnitKind>();
  const profileOf = (unitId: string, kind: UnitKind): UnitProfile => {
    const overrides = {
      ...((config.profiles.byKind[kind] as Partial<UnitProfile> | undefined) ?? {}),
      ...((config.profiles.byUnit[unitId] as Partial<UnitProfile> | undefined) ?? {}),
    };
    return profileFor(kind, overrides);
  };
  const core = new ExcursionEngine({
    clock: { now },
    unitProfile: (unitId) => {
      const kind = kinds.get(unitId);
      return kind ? profileOf(unitId, kind) : undefined;
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
    ingest: (readings) => adapt(core.ingest(readings)),
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
      ),
    acknowledge: (alarmId, ack, at) => adapt(core.acknowledge(alarmId, ack, at)),
    tick: (t) => adapt(core.tick(t)),
  };
}
