/**
 * How a unit looks at a glance (pure rules, no I/O): its state, why, its probes' latest values
 * and faults, calibration, agent, alarms; and the worst-first order of the fleet overview.
 *
 *   state    when (first that holds)
 *   action   an open temperature alarm at the action tier, or an open excursion that reached it
 *   alert    an open temperature alarm at the alert tier, an open excursion, or probe drift
 *   offline  the unit's agent is offline (or never announced itself)
 *   gap      no reading yet, the newest is older than the profile's maxGapMs, or an open
 *            connectivity / recording gap alarm
 *   ok       otherwise
 *
 * The engine decides alarms and excursions (with their delays and hysteresis); this only
 * reads them. Offline and gap come before ok but after the temperature tiers: a fridge known
 * to be too warm is worse than one we cannot hear.
 */
import type {
  AgentRecord,
  AlarmRecord,
  ExcursionRecord,
  ProbeRecord,
  StoredReading,
  UnitRecord,
} from "../storage/types.ts";
import type { ProbeView, StateReason, UnitOverview, UnitState } from "./views.ts";

export interface UnitFacts {
  unit: UnitRecord;
  probes: readonly ProbeRecord[];
  /** Latest reading per probe id. */
  latest: ReadonlyMap<string, StoredReading>;
  agent: AgentRecord | undefined;
  /** The unit's alarms that are raised or acknowledged (not cleared). */
  openAlarms: readonly AlarmRecord[];
  /** The unit's excursions whose endedAt is null. */
  openExcursions: readonly ExcursionRecord[];
  range: { low?: number | undefined; high?: number | undefined };
  /** The profile's longest spacing between readings that is still a continuous record. */
  maxGapMs: number;
  now: number;
  calibrationDueSoonMs: number;
}

const GAP_KINDS = new Set(["connectivity_gap", "recording_gap"]);

const tierRank = (tier: string | undefined) => (tier === "action" ? 2 : tier === "alert" ? 1 : 0);

function calibration(dueAt: number | null, now: number, soonMs: number): ProbeView["calibration"] {
  if (dueAt === null) return "unknown";
  if (dueAt <= now) return "overdue";
  return dueAt - now <= soonMs ? "due_soon" : "ok";
}

export function probeViews(f: UnitFacts): ProbeView[] {
  const faulted = new Set(f.openAlarms.filter((a) => a.kind === "probe_fault").map((a) => a.probeId));
  // Probes of the birth, plus any probe we have readings of that the birth did not list.
  const ids = [...new Set([...f.probes.map((p) => p.probeId), ...f.latest.keys()])].sort();
  const byId = new Map(f.probes.map((p) => [p.probeId, p]));
  return ids.map((probeId) => {
    const r = f.latest.get(probeId);
    const dueAt = byId.get(probeId)?.calibrationDueAt ?? null;
    return {
      probeId,
      tempC: r?.tempC ?? null,
      quality: r?.quality ?? null,
      observedAt: r?.observedAt ?? null,
      receivedAt: r?.receivedAt ?? null,
      fault: (r !== undefined && r.quality !== "ok") || faulted.has(probeId),
      calibrationDueAt: dueAt,
      calibration: calibration(dueAt, f.now, f.calibrationDueSoonMs),
    };
  });
}

function stateOf(f: UnitFacts, lastReadingAt: number | null): { state: UnitState; reason: StateReason } {
  const temperature = f.openAlarms.filter((a) => a.kind === "temperature");
  const alarmTier = Math.max(0, ...temperature.map((a) => tierRank(a.tier)));
  const excursionTier = Math.max(0, ...f.openExcursions.map((e) => tierRank(e.tier)));
  if (alarmTier === 2) return { state: "action", reason: "temperature_action" };
  if (excursionTier === 2) return { state: "action", reason: "excursion_action" };
  if (alarmTier === 1) return { state: "alert", reason: "temperature_alert" };
  if (f.openExcursions.length > 0) return { state: "alert", reason: "excursion_alert" };
  if (f.openAlarms.some((a) => a.kind === "probe_drift")) return { state: "alert", reason: "probe_drift" };
  if (!f.agent) return { state: "offline", reason: "no_agent" };
  if (f.agent.state === "offline") return { state: "offline", reason: "agent_offline" };
  if (lastReadingAt === null) return { state: "gap", reason: "no_readings" };
  if (f.now - lastReadingAt > f.maxGapMs) return { state: "gap", reason: "readings_late" };
  if (f.openAlarms.some((a) => GAP_KINDS.has(a.kind))) return { state: "gap", reason: "gap_alarm" };
  return { state: "ok", reason: "in_range" };
}

export function unitOverviewOf(f: UnitFacts): UnitOverview {
  const probes = probeViews(f);
  let lastReadingAt: number | null = null;
  let lastReceivedAt: number | null = null;
  for (const p of probes) {
    if (p.observedAt !== null && (lastReadingAt === null || p.observedAt > lastReadingAt))
      lastReadingAt = p.observedAt;
    if (p.receivedAt !== null && (lastReceivedAt === null || p.receivedAt > lastReceivedAt))
      lastReceivedAt = p.receivedAt;
  }
  const { state, reason } = stateOf(f, lastReadingAt);
  const open = [...f.openExcursions].sort(
    (a, b) => tierRank(b.tier) - tierRank(a.tier) || a.startedAt - b.startedAt,
  );
  const x = open[0];
  return {
    unitId: f.unit.unitId,
    siteId: f.unit.siteId,
    name: f.unit.name ?? f.unit.unitId,
    kind: f.unit.kind,
    state,
    reason,
    range: { low: f.range.low ?? null, high: f.range.high ?? null },
    probes,
    agent: f.agent
      ? {
          agentId: f.agent.agentId,
          state: f.agent.state,
          lastSeenAt: Math.max(f.agent.lastSeenAt, lastReceivedAt ?? 0),
        }
      : null,
    openAlarms: f.openAlarms.length,
    unacknowledgedAlarms: f.openAlarms.filter((a) => a.state === "raised").length,
    openExcursion: x
      ? {
          excursionId: x.excursionId,
          side: x.side,
          tier: x.tier,
          startedAt: x.startedAt,
          peakC: x.peakC,
          troughC: x.troughC,
        }
      : null,
    lastReadingAt,
  };
}

const STATE_RANK: Record<UnitState, number> = { action: 0, alert: 1, offline: 2, gap: 3, ok: 4 };

/** Worst first: state, then most unacknowledged alarms, then site and name. */
export function worstFirst(a: UnitOverview, b: UnitOverview): number {
  return (
    STATE_RANK[a.state] - STATE_RANK[b.state] ||
    b.unacknowledgedAlarms - a.unacknowledgedAlarms ||
    a.siteId.localeCompare(b.siteId) ||
    a.name.localeCompare(b.name, undefined, { numeric: true }) ||
    a.unitId.localeCompare(b.unitId)
  );
}

/**
 * What a person would notice change on the overview tile, besides the temperatures that the
 * readings stream brings anyway: a new unit event is sent only when this changes.
 */
export function tileSignature(u: UnitOverview): string {
  return JSON.stringify([
    u.state,
    u.reason,
    u.name,
    u.openAlarms,
    u.unacknowledgedAlarms,
    u.openExcursion?.excursionId ?? null,
    u.openExcursion?.tier ?? null,
    u.agent?.state ?? null,
    u.probes.map((p) => [p.probeId, p.fault, p.calibration]),
    u.range,
  ]);
}
