/**
 * Status series for Grafana, in the InfluxDB 1.x database the readings go to: what the records
 * database knows (unit states, alarms, excursions, agents, probes' calibration), what agents
 * report in their health messages (outbox depth, probe faults), and the gateway's own ingest
 * counters, sampled every few seconds. The records stay the truth; these are a view of them
 * for dashboards, rewritten on every sample (docs/integrator/grafana.md).
 *
 *   measurement      tags                  fields
 *   unit_status      site, unit, kind      state (ok|offline|alert|action), level (0 ok, 1 offline,
 *                                          2 alert, 3 action), openAlarms, the profile's limits
 *                                          (rangeLow/High, alertLow/High, actionLow/High, °C) and
 *                                          GSP cadence (recordIntervalS, outOfRangeRecordIntervalS, maxGapS)
 *   fleet_status     site                  unitsOk, unitsOffline, unitsAlert, unitsAction, agentsOnline,
 *                                          agentsOffline, openAlarms, openExcursions
 *   agent_status     site, agent           online (0/1), lastSeenAgeS, outboxDepth, outboxOldestAgeS,
 *                                          outboxEvictedTotal (the last three from the agent's health)
 *   probe_status     site, unit, probe     calibrationDueInDays (negative: overdue), calibrationOverdue (0/1),
 *                                          faultsTotal, consecutiveFailures, lastOkAgeS (from health)
 *   excursion        site, unit            at startedAt: excursionId, title, open (0/1), endedAt (ms; the
 *                                          sample time while open),
 *                                          tier, side, peakC, troughC, durationMin, degreeMinutes
 *   gateway_ingest   gateway               the counters of GET /metrics (cumulative) and pendingReadings
 *
 * Tags are bounded (sites, units, probes, agents); ids that grow without bound (excursionId)
 * are fields. An excursion is one point per unit and start time, overwritten as it grows and
 * when it closes, so Grafana draws it as one annotation region. The first sample writes the
 * excursions of the last `excursionLookbackMs`; later ones those the engine reported since
 * (`excursion()`, from its outputs: late data opens excursions in the past) and the open ones. Writing never throws into the gateway: failures are logged, counted
 * and retried at the next sample.
 */
import type { ProbeHealth, UnitKind } from "@coldtrace/protocol";
import type { InfluxDB, IPoint } from "influx";
import type { Logger } from "pino";
import { type InfluxStoreOptions, influxClient } from "./influx.ts";
import type { AlarmRecord, ExcursionRecord, RecordStore } from "./types.ts";

export const STATUS_MEASUREMENTS = [
  "unit_status",
  "fleet_status",
  "agent_status",
  "probe_status",
  "excursion",
  "gateway_ingest",
] as const;

/** The part of a unit's excursion profile the dashboards show (excursions/profiles.ts). */
export interface UnitLimits {
  range: { low?: number; high?: number };
  alert: { low?: number; high?: number };
  action: { low?: number; high?: number };
  cadence: { recordMs: number; outOfRangeRecordMs: number };
  maxGapMs: number;
}

export interface StatusSources {
  records: RecordStore;
  /** The unit's profile as the engine applies it (undefined: no limits shown). */
  limitsOf(unit: { unitId: string; kind: UnitKind }): UnitLimits | undefined;
  /** The gateway's ingest counters (IngestMetrics or a snapshot of them). */
  ingest?: () => Record<string, number>;
  now?: () => number;
  log: Logger;
}

export interface InfluxStatusOptions extends InfluxStoreOptions {
  gatewayId: string;
  /** How far back the first sample writes excursions (default 7 days). */
  excursionLookbackMs?: number;
}

export interface InfluxStatusWriter {
  /** Keep an agent's latest health message for the next sample (cheap: no I/O). */
  probeHealth(siteId: string, health: ProbeHealth): void;
  /** An excursion event of the engine (opened, updated, closed): written at the next sample. */
  excursion(e: ExcursionShape): void;
  /** Write one sample of every measurement. Never throws; false when the write failed. */
  sample(): Promise<boolean>;
  /** Samples that failed since start. */
  readonly failures: number;
  close(): Promise<void>;
}

const DAY_MS = 86_400_000;
const OPEN = new Set(["raised", "acknowledged"]);
/** Alarm kinds that mean the unit's record is not coming in. */
const SILENT = new Set(["agent_offline", "connectivity_gap", "recording_gap"]);
const LEVEL = { ok: 0, offline: 1, alert: 2, action: 3 } as const;
type UnitState = keyof typeof LEVEL;
/** fleet_status field counting the units in each state. */
const UNITS_IN: Record<UnitState, string> = {
  ok: "unitsOk",
  offline: "unitsOffline",
  alert: "unitsAlert",
  action: "unitsAction",
};

function limitFields(l: UnitLimits | undefined): Record<string, number> {
  if (!l) return {};
  const out: Record<string, number> = {
    recordIntervalS: l.cadence.recordMs / 1000,
    outOfRangeRecordIntervalS: l.cadence.outOfRangeRecordMs / 1000,
    maxGapS: l.maxGapMs / 1000,
  };
  for (const [tier, v] of [
    ["range", l.range],
    ["alert", l.alert],
    ["action", l.action],
  ] as const) {
    if (v.low !== undefined) out[`${tier}Low`] = v.low;
    if (v.high !== undefined) out[`${tier}High`] = v.high;
  }
  return out;
}

function unitState(alarms: readonly AlarmRecord[], agentsOffline: boolean): UnitState {
  const temp = alarms.filter((a) => a.kind === "temperature");
  if (temp.some((a) => a.tier === "action")) return "action";
  if (temp.length > 0) return "alert";
  if (agentsOffline || alarms.some((a) => SILENT.has(a.kind))) return "offline";
  return "ok";
}

/** What an excursion point is made of: an ExcursionRecord, or the engine's excursion event. */
export type ExcursionShape = Pick<
  ExcursionRecord,
  | "excursionId"
  | "siteId"
  | "unitId"
  | "side"
  | "tier"
  | "startedAt"
  | "endedAt"
  | "durationMs"
  | "peakC"
  | "troughC"
  | "degreeMinutes"
>;

function excursionTitle(e: ExcursionShape): string {
  const peak = e.side === "high" ? `peak ${e.peakC.toFixed(1)} °C` : `trough ${e.troughC.toFixed(1)} °C`;
  const minutes = Math.round(e.durationMs / 60_000);
  return `${e.tier} excursion (${e.side}) on ${e.unitId}: ${peak}, ${minutes} min${e.endedAt === null ? ", open" : ""}`;
}

export function createInfluxStatusWriter(
  opts: InfluxStatusOptions,
  sources: StatusSources,
): InfluxStatusWriter {
  const influx: InfluxDB = influxClient(opts);
  const now = sources.now ?? Date.now;
  const log = sources.log.child({ component: "influx-status" });
  const health = new Map<string, { siteId: string; health: ProbeHealth }>();
  let backfilled = false;
  /** Excursions the engine reported since the last sample, latest state per id. */
  const reported = new Map<string, ExcursionShape>();
  let failures = 0;
  let failing = 0;
  let ready: Promise<void> | undefined;
  let running: Promise<boolean> | undefined;

  async function points(
    t: number,
  ): Promise<{ points: IPoint[]; taken: string[]; sent: Map<string, ExcursionShape> }> {
    const { records } = sources;
    const [units, probes, agents, raised, acknowledged] = await Promise.all([
      records.listUnits(),
      records.listProbes(),
      records.listAgents(),
      records.listAlarms({ state: "raised" }),
      records.listAlarms({ state: "acknowledged" }),
    ]);
    // At start, the excursions of the lookback; then those the engine reported since the last
    // sample (late data makes excursions in the past: a time window would miss them), and the
    // open ones, whose region grows to the sample time.
    const openExcursions = await records.listExcursions({ open: true });
    const excursions = new Map<string, ExcursionShape>();
    if (!backfilled) {
      const from = t - (opts.excursionLookbackMs ?? 7 * DAY_MS);
      for (const e of await records.listExcursions({ from, to: t + 1 })) excursions.set(e.excursionId, e);
    }
    for (const [id, e] of reported) excursions.set(id, e);
    for (const e of openExcursions) if (!excursions.has(e.excursionId)) excursions.set(e.excursionId, e);
    const taken = [...reported.keys()];
    const open = [...raised, ...acknowledged].filter((a) => OPEN.has(a.state));
    const out: IPoint[] = [];
    const at = (measurement: string, tags: Record<string, string>, fields: Record<string, unknown>) =>
      out.push({ measurement, tags, fields: fields as IPoint["fields"], timestamp: t });

    const offlineAgents = new Set(agents.filter((a) => a.state === "offline").map((a) => a.agentId));
    const fleet = new Map<string, Record<string, number>>();
    const site = (id: string): Record<string, number> => {
      let s = fleet.get(id);
      if (!s) {
        s = { agentsOnline: 0, agentsOffline: 0, openAlarms: 0, openExcursions: 0 };
        for (const field of Object.values(UNITS_IN)) s[field] = 0;
        fleet.set(id, s);
      }
      return s;
    };
    const add = (siteId: string, field: string, n = 1) => {
      const s = site(siteId);
      s[field] = (s[field] ?? 0) + n;
    };
    for (const u of units) {
      const alarms = open.filter((a) => a.unitId === u.unitId);
      const unitAgents = new Set(
        probes.filter((p) => p.unitId === u.unitId && p.agentId).map((p) => p.agentId),
      );
      const silent = unitAgents.size > 0 && [...unitAgents].every((a) => offlineAgents.has(a as string));
      const state = unitState(alarms, silent);
      add(u.siteId, UNITS_IN[state]);
      add(u.siteId, "openAlarms", alarms.length);
      at(
        "unit_status",
        { site: u.siteId, unit: u.unitId, kind: u.kind },
        { state, level: LEVEL[state], openAlarms: alarms.length, ...limitFields(sources.limitsOf(u)) },
      );
    }
    for (const e of openExcursions) add(e.siteId, "openExcursions");
    for (const a of agents) {
      add(a.siteId, a.state === "online" ? "agentsOnline" : "agentsOffline");
      const h = health.get(a.agentId)?.health;
      at(
        "agent_status",
        { site: a.siteId, agent: a.agentId },
        {
          online: a.state === "online" ? 1 : 0,
          lastSeenAgeS: Math.max(0, (t - a.lastSeenAt) / 1000),
          ...(h?.outbox
            ? {
                outboxDepth: h.outbox.depth,
                outboxEvictedTotal: h.outbox.evictedTotal,
                ...(h.outbox.oldestObservedAt === null
                  ? {}
                  : { outboxOldestAgeS: Math.max(0, (t - h.outbox.oldestObservedAt) / 1000) }),
              }
            : {}),
        },
      );
    }
    for (const [siteId, fields] of fleet) at("fleet_status", { site: siteId }, fields);

    const probeReports = new Map<string, ProbeHealth["probes"][number]>();
    for (const { health: h } of health.values())
      for (const p of h.probes) probeReports.set(`${p.unitId}/${p.probeId}`, p);
    for (const p of probes) {
      const h = probeReports.get(`${p.unitId}/${p.probeId}`);
      const due = p.calibrationDueAt ?? h?.calibrationDueAt ?? null;
      const fields: Record<string, number> = {};
      if (due !== null) {
        fields.calibrationDueInDays = (due - t) / DAY_MS;
        fields.calibrationOverdue = due <= t ? 1 : 0;
      }
      if (h) {
        fields.faultsTotal = Object.values(h.faults).reduce((n, v) => n + (typeof v === "number" ? v : 0), 0);
        fields.consecutiveFailures = h.consecutiveFailures;
        if (h.lastOkAt !== null) fields.lastOkAgeS = Math.max(0, (t - h.lastOkAt) / 1000);
      }
      if (Object.keys(fields).length > 0)
        at("probe_status", { site: p.siteId, unit: p.unitId, probe: p.probeId }, fields);
    }

    for (const e of excursions.values()) {
      out.push({
        measurement: "excursion",
        tags: { site: e.siteId, unit: e.unitId },
        fields: {
          excursionId: e.excursionId,
          title: excursionTitle(e),
          open: e.endedAt === null ? 1 : 0,
          // Grafana draws [time, endedAt] as a region: an open excursion reaches the sample time.
          endedAt: e.endedAt ?? t,
          tier: e.tier,
          side: e.side,
          peakC: e.peakC,
          troughC: e.troughC,
          durationMin: e.durationMs / 60_000,
          degreeMinutes: e.degreeMinutes,
        },
        timestamp: e.startedAt,
      });
    }
    const counters = sources.ingest?.();
    if (counters) at("gateway_ingest", { gateway: opts.gatewayId }, counters);
    return { points: out, taken, sent: new Map(taken.map((id) => [id, reported.get(id) as ExcursionShape])) };
  }

  async function sample(): Promise<boolean> {
    const t = now();
    try {
      ready ??= influx.createDatabase(opts.database);
      await ready;
      const batch = await points(t);
      await influx.writePoints(batch.points, {
        database: opts.database,
        precision: "ms",
        ...(opts.retentionPolicy ? { retentionPolicy: opts.retentionPolicy } : {}),
      });
      backfilled = true;
      // Written: forget them, unless the engine reported a newer state meanwhile.
      for (const id of batch.taken) if (reported.get(id) === batch.sent.get(id)) reported.delete(id);
      if (failing > 0) log.info({ failedSamples: failing }, "status samples for Grafana written again");
      failing = 0;
      return true;
    } catch (err) {
      ready = undefined;
      failures++;
      // One warning per outage, not one per sample.
      if (failing++ === 0)
        log.warn({ err }, "status sample for Grafana not written; retried at every sample");
      return false;
    }
  }

  return {
    probeHealth(siteId, h) {
      health.set(h.agentId, { siteId, health: h });
    },
    excursion(e) {
      reported.set(e.excursionId, e);
    },
    sample() {
      // One sample at a time; a tick that comes while one runs shares it.
      running ??= sample().finally(() => {
        running = undefined;
      });
      return running;
    },
    get failures() {
      return failures;
    },
    async close() {
      await running;
    },
  };
}
