/**
 * The event-time excursion engine: readings in, alarm / excursion / gap events out. Pure, no I/O;
 * the ingest runtime feeds it and publishes and persists what it returns. Time comes from the
 * readings (observedAt) and, for gaps only, from an injected Clock via `tick(now)`.
 *
 *   ingest(batch) ─▶ per unit: dedupe by (probeId, observedAt)
 *        │              ├─ all newer than what we have ─▶ step the unit's state machine (O(1) each)
 *        │              └─ some late ─▶ merge into the time-ordered window, restore the last
 *        │                              checkpoint before the earliest late reading, replay
 *        ▼
 *   canonical excursions + alarms (a pure function of the set of readings) ─▶ diff against what
 *   was already emitted ─▶ opened / updated / closed, raised / acknowledged / cleared
 *
 * Ids are derived from the unit and the event time where a thing started, so a replay finds the
 * same ids. If late data shows an emitted excursion started earlier (or never happened), the old
 * id is closed with zero duration ("superseded") and the true one is opened; an emitted alarm
 * that late data withdraws is cleared at its own raisedAt. docs/qa/excursion-rules.md has the rules.
 */
import {
  type AlarmEvent,
  ColdtraceError,
  type ExcursionEvent,
  type GapRecord,
  type Quality,
  type TimeQuality,
  type UnitKind,
} from "@coldtrace/protocol";
import type { Clock } from "../kernel/clock.ts";
import { defaultProfiles, type UnitProfile } from "../kernel/profiles.ts";
import { MktAccumulator } from "./metrics.ts";

const MIN = 60_000;
const HOUR = 60 * MIN;

export interface EngineReading {
  siteId: string;
  unitId: string;
  probeId: string;
  agentId: string;
  seq: number;
  observedAt: number;
  tempC: number | null;
  quality: Quality;
  /** The agent doubted its clock (reading.timeQuality); "unsynchronised"/"stepped" are set aside. */
  timeQuality?: TimeQuality;
}

/** A span without any reading for a unit. `to` is null while the unit is still silent. */
export interface ConnectivityGap {
  gapId: string;
  siteId: string;
  unitId: string;
  from: number;
  to: number | null;
  state: "open" | "covered" | "recording_gap";
}

export type EngineOutput =
  | { type: "alarm"; event: AlarmEvent }
  | { type: "excursion"; event: ExcursionEvent }
  | { type: "gap"; gap: ConnectivityGap };

export interface ExcursionEngineOptions {
  clock: Clock;
  /** Profile for a unit not registered with one (config lookup); undefined = kind default. */
  unitProfile(unitId: string): UnitProfile | undefined;
  /** How late a reading may arrive and still be re-evaluated. Default 48 h. */
  latenessWindowMs?: number;
  /** Closed excursions and alarms stay queryable this long after they end. Default 30 days. */
  recordRetentionMs?: number;
  /**
   * Memory bound per unit besides the lateness window: at most about this many readings are
   * kept (a unit reporting every second keeps less than 48 h). Default 50,000.
   */
  maxRetainedPerUnit?: number;
  /** Readings per checkpoint of a unit's state. Default 256. */
  checkpointEvery?: number;
  /**
   * Readings dated more than this ahead of the clock are an agent clock error, not data: they
   * would move the unit's event time forward and make real readings "too late". Default 15 min.
   */
  maxClockSkewMs?: number;
  /**
   * Readings the engine does not evaluate, handed here to be logged for QA review:
   * `too_late` = older than the lateness window; `future` = beyond the clock skew;
   * `untrusted_time` = the agent flagged its clock as not synchronised (or jumped) when it
   * took them: their times are not evaluated as fact.
   */
  onSetAside?(readings: readonly EngineReading[], reason: "too_late" | "future" | "untrusted_time"): void;
}

export interface EngineStats {
  readings: number;
  duplicates: number;
  replays: number;
  tooLate: number;
  future: number;
  untrustedTime: number;
  unknownUnit: number;
  /** Readings held in memory now (all units): bounded by the lateness window. */
  retained: number;
}

// ───────────────────────────── ids ─────────────────────────────

function fnv36(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}

/** A segment id (≤ 64 chars, contract segmentId) from parts; long ones keep a prefix and a hash. */
export function stableId(...parts: (string | number)[]): string {
  const id = parts.map((p) => (typeof p === "number" ? p.toString(36) : p)).join(".");
  if (id.length <= 64) return id;
  const h = fnv36(id);
  return `${id.slice(0, 63 - h.length)}.${h}`;
}

// ─────────────────────────── state ────────────────────────────

type Side = "high" | "low";
type Tier = "alert" | "action";
const SIDES: readonly Side[] = ["high", "low"];
const TIERS: readonly Tier[] = ["alert", "action"];

interface Mkt {
  refInvK: number;
  sum: number;
  weight: number;
}
const emptyMkt = (): Mkt => ({ refInvK: Number.NaN, sum: 0, weight: 0 });
function mktAdd(m: Mkt, tempC: number, w: number): void {
  const invK = 1 / (tempC + 273.15);
  if (Number.isNaN(m.refInvK)) m.refInvK = invK;
  m.sum += w * Math.exp(10_000 * (m.refInvK - invK));
  m.weight += w;
}
function mktValue(...parts: Mkt[]): number | null {
  const acc = new MktAccumulator();
  for (const p of parts) acc.merge(p);
  return acc.valueC();
}

interface ExcAcc {
  id: string;
  startedAt: number;
  lastT: number;
  peakC: number;
  troughC: number;
  degreeMinutes: number;
  alertMs: number;
  actionMs: number;
  tier: Tier;
  mkt: Mkt;
  mktReadings: Mkt;
}

interface TierSt {
  since: number | null;
  alarmId: string | null;
}

interface SideSt {
  exc: ExcAcc | null;
  alert: TierSt;
  action: TierSt;
}

interface State {
  segT: number | null;
  worstHigh: number | null;
  worstLow: number | null;
  /** The probes that hold worstHigh / worstLow (ties: the smallest probe id, any arrival order). */
  worstHighProbe: string | null;
  worstLowProbe: string | null;
  probes: Map<string, { t: number; tempC: number }>;
  faults: Map<string, string>;
  high: SideSt;
  low: SideSt;
  drift: TierSt;
  hour: { h: number; mkt: Mkt };
}

const newSide = (): SideSt => ({
  exc: null,
  alert: { since: null, alarmId: null },
  action: { since: null, alarmId: null },
});

function initialState(): State {
  return {
    segT: null,
    worstHigh: null,
    worstLow: null,
    worstHighProbe: null,
    worstLowProbe: null,
    probes: new Map(),
    faults: new Map(),
    high: newSide(),
    low: newSide(),
    drift: { since: null, alarmId: null },
    hour: { h: Number.NaN, mkt: emptyMkt() },
  };
}

function cloneSide(s: SideSt): SideSt {
  return {
    exc: s.exc ? { ...s.exc, mkt: { ...s.exc.mkt }, mktReadings: { ...s.exc.mktReadings } } : null,
    alert: { ...s.alert },
    action: { ...s.action },
  };
}

function cloneState(s: State): State {
  return {
    segT: s.segT,
    worstHigh: s.worstHigh,
    worstLow: s.worstLow,
    worstHighProbe: s.worstHighProbe,
    worstLowProbe: s.worstLowProbe,
    probes: new Map(s.probes),
    faults: new Map(s.faults),
    high: cloneSide(s.high),
    low: cloneSide(s.low),
    drift: { ...s.drift },
    hour: { h: s.hour.h, mkt: { ...s.hour.mkt } },
  };
}

interface Entry {
  t: number;
  probeId: string;
  tempC: number | null;
  quality: Quality;
  seq: number;
  agentId: string;
}

function cmpKey(a: { t: number; probeId: string }, b: { t: number; probeId: string }): number {
  if (a.t !== b.t) return a.t - b.t;
  return a.probeId < b.probeId ? -1 : a.probeId > b.probeId ? 1 : 0;
}

/** Two readings of one probe at one instant: a deterministic winner whatever the arrival order. */
function preferred(a: Entry, b: Entry): Entry {
  if (a.seq !== b.seq) return a.seq > b.seq ? a : b;
  if (a.agentId !== b.agentId) return a.agentId > b.agentId ? a : b;
  if (a.quality !== b.quality) return a.quality > b.quality ? a : b;
  return (a.tempC ?? Number.NEGATIVE_INFINITY) >= (b.tempC ?? Number.NEGATIVE_INFINITY) ? a : b;
}

const sameEntry = (a: Entry, b: Entry) =>
  a.seq === b.seq && a.agentId === b.agentId && a.quality === b.quality && a.tempC === b.tempC;

interface AlarmRec {
  alarmId: string;
  kind: AlarmEvent["kind"];
  unitId: string;
  probeId?: string;
  tier?: Tier;
  side?: Side;
  /** Temperature alarms: the worst probe's value when raised, and the limit crossed (°C). */
  valueC?: number;
  limitC?: number;
  raisedAt: number;
  clearedAt?: number;
  message: string;
  /** Event time of the reading that decided the raise / clear (for rollback). */
  raiseT: number;
  clearT?: number;
}

/** A closed excursion (open ones live in the unit's state and are materialised on demand). */
interface ExcRec {
  event: Omit<ExcursionEvent, "eventId" | "type">;
  closeT: number | null;
}

interface GapSt {
  gap: ConnectivityGap;
  connAlarmId: string | null;
  /** Latest event time up to which a hole is known to remain (rescan when late data lands before it). */
  holeEnd: number;
}

interface Unit {
  siteId: string;
  unitId: string;
  kind: UnitKind;
  profile: UnitProfile;
  probeIds: string[];
  calibrationDue: Map<string, number | null>;
  timeline: Entry[];
  /** Index into timeline of the next entry to process; state is after timeline[0..processed). */
  processed: number;
  state: State;
  checkpoints: { index: number; t: number; state: State }[];
  lastCheckpointIndex: number;
  maxT: number | null;
  excRecords: Map<string, ExcRec>;
  alarmRecords: Map<string, AlarmRec>;
  /** Alarms decided outside the replayed state machine: gaps, calibration. */
  outerAlarms: Map<string, AlarmRec>;
  hours: Map<number, { mkt: Mkt; decideT: number }>;
  gaps: Map<string, GapSt>;
  dirtyGaps: Set<string>;
  dirtyExc: Set<string>;
  dirtyAlarms: Set<string>;
}

interface PublishedAlarm {
  raised: boolean;
  acked: boolean;
  /** clearedAt of the last published clear; undefined while raised. */
  clearedAt: number | undefined;
  unitId: string;
}

interface PublishedExc {
  content: string;
  /** Last published as superseded (closed with zero duration). */
  superseded: boolean;
  event: ExcursionEvent;
}

// ─────────────────────────── engine ────────────────────────────

export class ExcursionEngine {
  private readonly opts: ExcursionEngineOptions;
  private readonly lateness: number;
  private readonly retention: number;
  private readonly every: number;
  private readonly maxSkew: number;
  private readonly maxRetained: number;
  private readonly units = new Map<string, Unit>();
  private readonly acks = new Map<
    string,
    { by: string; comment: string; correctiveAction: string; at: number }
  >();
  private readonly pubAlarms = new Map<string, PublishedAlarm>();
  private readonly pubExc = new Map<string, PublishedExc>();
  private readonly counters: Omit<EngineStats, "retained"> = {
    readings: 0,
    duplicates: 0,
    replays: 0,
    tooLate: 0,
    future: 0,
    untrustedTime: 0,
    unknownUnit: 0,
  };

  constructor(opts: ExcursionEngineOptions) {
    this.opts = opts;
    this.lateness = opts.latenessWindowMs ?? 48 * HOUR;
    this.retention = opts.recordRetentionMs ?? 30 * 24 * HOUR;
    this.every = Math.max(8, opts.checkpointEvery ?? 256);
    this.maxSkew = opts.maxClockSkewMs ?? 15 * MIN;
    this.maxRetained = Math.max(this.every * 8, opts.maxRetainedPerUnit ?? 50_000);
  }

  registerUnit(u: {
    siteId: string;
    unitId: string;
    kind: UnitKind;
    profile?: UnitProfile;
    probeIds?: string[];
    calibrationDue?: Record<string, number | null>;
  }): void {
    const profile = u.profile ?? this.opts.unitProfile(u.unitId) ?? defaultProfiles[u.kind];
    const existing = this.units.get(u.unitId);
    if (existing) {
      existing.profile = profile;
      existing.siteId = u.siteId;
      existing.kind = u.kind;
      if (u.probeIds) existing.probeIds = [...u.probeIds];
      if (u.calibrationDue) {
        const now = this.opts.clock.now();
        for (const [probeId, due] of Object.entries(u.calibrationDue)) {
          if (existing.calibrationDue.get(probeId) === due) continue;
          existing.calibrationDue.set(probeId, due);
          // A new due date (probe recalibrated): the old overdue alarm is cleared.
          for (const rec of existing.outerAlarms.values()) {
            if (
              rec.kind === "calibration_overdue" &&
              rec.probeId === probeId &&
              rec.clearedAt === undefined
            ) {
              rec.clearedAt = Math.max(rec.raisedAt, now);
              existing.dirtyAlarms.add(rec.alarmId);
            }
          }
        }
      }
      return;
    }
    this.units.set(u.unitId, {
      siteId: u.siteId,
      unitId: u.unitId,
      kind: u.kind,
      profile,
      probeIds: [...(u.probeIds ?? [])],
      calibrationDue: new Map(Object.entries(u.calibrationDue ?? {})),
      timeline: [],
      processed: 0,
      state: initialState(),
      checkpoints: [{ index: 0, t: Number.NEGATIVE_INFINITY, state: initialState() }],
      lastCheckpointIndex: 0,
      maxT: null,
      excRecords: new Map(),
      alarmRecords: new Map(),
      outerAlarms: new Map(),
      hours: new Map(),
      gaps: new Map(),
      dirtyGaps: new Set(),
      dirtyExc: new Set(),
      dirtyAlarms: new Set(),
    });
  }

  stats(): Readonly<EngineStats> {
    let retained = 0;
    for (const u of this.units.values()) retained += u.timeline.length;
    return { ...this.counters, retained };
  }

  // ─────────────────────────── ingest ────────────────────────────

  ingest(readings: readonly EngineReading[]): EngineOutput[] {
    const byUnit = new Map<string, EngineReading[]>();
    const horizon = this.opts.clock.now() + this.maxSkew;
    let future: EngineReading[] | undefined;
    let untrusted: EngineReading[] | undefined;
    for (const r of readings) {
      if (r.timeQuality === "unsynchronised" || r.timeQuality === "stepped") {
        untrusted ??= [];
        untrusted.push(r);
        continue;
      }
      if (r.observedAt > horizon) {
        future ??= [];
        future.push(r);
        continue;
      }
      let list = byUnit.get(r.unitId);
      if (!list) {
        list = [];
        byUnit.set(r.unitId, list);
      }
      list.push(r);
    }
    if (future) {
      this.counters.future += future.length;
      this.opts.onSetAside?.(future, "future");
    }
    if (untrusted) {
      this.counters.untrustedTime += untrusted.length;
      this.opts.onSetAside?.(untrusted, "untrusted_time");
    }
    const out: EngineOutput[] = [];
    for (const [unitId, list] of byUnit) {
      let u = this.units.get(unitId);
      if (!u) {
        const profile = this.opts.unitProfile(unitId);
        const first = list[0]!;
        if (!profile) {
          this.counters.unknownUnit += list.length;
          continue;
        }
        this.registerUnit({ siteId: first.siteId, unitId, kind: profile.kind, profile });
        u = this.units.get(unitId)!;
      }
      this.counters.readings += list.length;
      const lateFrom = this.ingestUnit(u, list);
      this.afterData(u, lateFrom);
      this.prune(u);
      this.flush(u, out);
    }
    return out;
  }

  /** Returns the earliest event time re-evaluated out of order (+∞ when all was in order). */
  private ingestUnit(u: Unit, list: readonly EngineReading[]): number {
    const entries: Entry[] = list.map((r) => ({
      t: r.observedAt,
      probeId: r.probeId,
      tempC: r.quality === "ok" ? r.tempC : null,
      quality: r.tempC === null && r.quality === "ok" ? "sensor_fault" : r.quality,
      seq: r.seq,
      agentId: r.agentId,
    }));
    let sorted = true;
    for (let i = 1; i < entries.length; i++) {
      if (cmpKey(entries[i - 1]!, entries[i]!) > 0) {
        sorted = false;
        break;
      }
    }
    if (!sorted) entries.sort(cmpKey);
    const last = u.timeline[u.timeline.length - 1];
    const first = entries[0]!;
    if (u.processed === u.timeline.length && (!last || cmpKey(first, last) > 0)) {
      // Fast path: everything is newer than what we have.
      let lateFrom = Number.POSITIVE_INFINITY;
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        const prev = u.timeline[u.timeline.length - 1];
        if (prev && cmpKey(prev, e) === 0) {
          this.counters.duplicates++;
          if (!sameEntry(prev, e) && preferred(prev, e) === e) {
            // Same instant twice in one batch with different content: fall back to the slow path.
            lateFrom = Math.min(lateFrom, this.mergeLate(u, [e]));
          }
          continue;
        }
        u.timeline.push(e);
        this.advance(u);
      }
      return lateFrom;
    }
    return this.mergeLate(u, entries);
  }

  /** Merge out-of-order entries, restore the checkpoint before the earliest, replay. */
  private mergeLate(u: Unit, entries: Entry[]): number {
    const base = u.checkpoints[0]!;
    const tooLate: Entry[] = [];
    const fresh: Entry[] = [];
    let minT = Number.POSITIVE_INFINITY;
    for (const e of entries) {
      if (e.t < base.t) {
        tooLate.push(e);
        continue;
      }
      const i = lowerBound(u.timeline, e);
      const found = u.timeline[i];
      if (found && cmpKey(found, e) === 0) {
        this.counters.duplicates++;
        if (sameEntry(found, e) || preferred(found, e) === found) continue;
        u.timeline[i] = e;
        if (e.t < minT) minT = e.t;
        continue;
      }
      const dup = fresh.length > 0 && cmpKey(fresh[fresh.length - 1]!, e) === 0;
      if (dup) {
        this.counters.duplicates++;
        const prev = fresh[fresh.length - 1]!;
        if (!sameEntry(prev, e) && preferred(prev, e) === e) fresh[fresh.length - 1] = e;
        continue;
      }
      fresh.push(e);
      if (e.t < minT) minT = e.t;
    }
    if (tooLate.length > 0) {
      this.counters.tooLate += tooLate.length;
      this.opts.onSetAside?.(
        tooLate.map((e) => ({
          siteId: u.siteId,
          unitId: u.unitId,
          probeId: e.probeId,
          agentId: e.agentId,
          seq: e.seq,
          observedAt: e.t,
          tempC: e.tempC,
          quality: e.quality,
        })),
        "too_late",
      );
    }
    if (minT === Number.POSITIVE_INFINITY) return minT;
    if (fresh.length > 0) u.timeline = mergeSorted(u.timeline, fresh);
    // Restore the latest checkpoint at or before minT: its state precedes every entry at ≥ its t.
    let c = u.checkpoints.length - 1;
    while (c > 0 && u.checkpoints[c]!.t > minT) c--;
    const cp = u.checkpoints[c]!;
    u.checkpoints.length = c + 1;
    u.lastCheckpointIndex = cp.index;
    this.rollback(u, cp.t);
    u.state = cloneState(cp.state);
    u.processed = cp.index;
    this.counters.replays++;
    while (u.processed < u.timeline.length) this.advance(u);
    return minT;
  }

  /** Forget every decision taken at or after event time `t`; replay will take them again. */
  private rollback(u: Unit, t: number): void {
    for (const side of SIDES) {
      const open = u.state[side].exc;
      if (open) u.dirtyExc.add(open.id);
    }
    for (const [id, rec] of u.excRecords) {
      if (rec.closeT === null || rec.closeT >= t) {
        u.excRecords.delete(id);
        u.dirtyExc.add(id);
      }
    }
    for (const [id, rec] of u.alarmRecords) {
      if (rec.raiseT >= t) {
        u.alarmRecords.delete(id);
        u.dirtyAlarms.add(id);
      } else if (rec.clearT !== undefined && rec.clearT >= t) {
        rec.clearT = undefined;
        rec.clearedAt = undefined;
        u.dirtyAlarms.add(id);
      }
    }
    for (const [h, b] of u.hours) if (b.decideT >= t) u.hours.delete(h);
  }

  /** Process timeline[processed], checkpointing first when due. */
  private advance(u: Unit): void {
    const i = u.processed;
    const e = u.timeline[i]!;
    if (i - u.lastCheckpointIndex >= this.every && i > 0 && u.timeline[i - 1]!.t < e.t) {
      u.checkpoints.push({ index: i, t: e.t, state: cloneState(u.state) });
      u.lastCheckpointIndex = i;
    }
    this.step(u, u.state, e);
    u.processed = i + 1;
    if (u.maxT === null || e.t > u.maxT) u.maxT = e.t;
  }

  // ────────────────────── the state machine ──────────────────────

  private step(u: Unit, st: State, e: Entry): void {
    const p = u.profile;
    const t = e.t;

    // 1. The segment [segT, t) held the previous worst values (step rule).
    if (st.segT !== null && t > st.segT) {
      const dt = t - st.segT;
      const covered = dt <= p.maxGapMs;
      for (const side of SIDES) {
        const v = side === "high" ? st.worstHigh : st.worstLow;
        if (v === null) continue;
        const ss = st[side];
        const exc = ss.exc;
        if (exc) {
          exc.lastT = t;
          u.dirtyExc.add(exc.id);
        }
        if (exc && covered) {
          const range = p.range[side];
          if (range !== undefined && beyond(side, v, range))
            exc.degreeMinutes += (Math.abs(v - range) * dt) / MIN;
          const alert = p.alert[side];
          const action = p.action[side];
          if (alert !== undefined && beyond(side, v, alert)) exc.alertMs += dt;
          if (action !== undefined && beyond(side, v, action)) exc.actionMs += dt;
          mktAdd(exc.mkt, v, dt);
        }
        for (const tier of TIERS) {
          const ts = ss[tier];
          if (ts.since !== null && ts.alarmId === null && t >= ts.since + p.delayMs[tier]) {
            this.raiseTemperature(u, st, side, tier, ts.since + p.delayMs[tier], t);
          }
        }
      }
      if (covered && st.worstHigh !== null) {
        const h = Math.floor(st.segT / HOUR);
        if (h !== st.hour.h) {
          if (st.hour.mkt.weight > 0) u.hours.set(st.hour.h, { mkt: st.hour.mkt, decideT: t });
          st.hour = { h, mkt: emptyMkt() };
        }
        mktAdd(st.hour.mkt, st.worstHigh, dt);
      }
      const d = st.drift;
      if (d.since !== null && d.alarmId === null && t >= d.since + p.drift.delayMs) {
        d.alarmId = stableId(u.unitId, "drift", d.since);
        this.setAlarm(u, {
          alarmId: d.alarmId,
          kind: "probe_drift",
          unitId: u.unitId,
          raisedAt: d.since + p.drift.delayMs,
          raiseT: t,
          message: `Probes of ${u.unitId} disagree by more than ${p.drift.toleranceC} °C for ${fmtMin(p.drift.delayMs)}`,
        });
      }
    }
    st.segT = t;

    // 2. Apply the reading. Non-ok readings never enter temperature logic.
    if (e.quality === "ok" && e.tempC !== null) {
      st.probes.set(e.probeId, { t, tempC: e.tempC });
      const fault = st.faults.get(e.probeId);
      if (fault !== undefined) {
        this.clearAlarm(u, fault, t, t);
        st.faults.delete(e.probeId);
      }
    } else {
      st.probes.delete(e.probeId);
      if (!st.faults.has(e.probeId)) {
        const alarmId = stableId(u.unitId, "fault", e.probeId, t);
        st.faults.set(e.probeId, alarmId);
        this.setAlarm(u, {
          alarmId,
          kind: "probe_fault",
          unitId: u.unitId,
          probeId: e.probeId,
          raisedAt: t,
          raiseT: t,
          message: `Probe ${e.probeId} of ${u.unitId} reports ${e.quality}; its readings are not used as temperatures`,
        });
      }
    }
    // The worst probe decides: each probe's latest value, unless older than the gap limit.
    let hi: number | null = null;
    let lo: number | null = null;
    let hiProbe: string | null = null;
    let loProbe: string | null = null;
    for (const [probeId, v] of st.probes) {
      if (t - v.t > p.maxGapMs) {
        st.probes.delete(probeId);
        continue;
      }
      if (hi === null || v.tempC > hi || (v.tempC === hi && probeId < (hiProbe as string))) {
        hi = v.tempC;
        hiProbe = probeId;
      }
      if (lo === null || v.tempC < lo || (v.tempC === lo && probeId < (loProbe as string))) {
        lo = v.tempC;
        loProbe = probeId;
      }
    }
    st.worstHigh = hi;
    st.worstLow = lo;
    st.worstHighProbe = hiProbe;
    st.worstLowProbe = loProbe;

    // 3. Excursions and tier alarms per side.
    for (const side of SIDES) {
      const v = side === "high" ? hi : lo;
      if (v === null) continue;
      const ss = st[side];
      const range = p.range[side];
      if (range !== undefined) {
        const exc = ss.exc;
        if (exc === null) {
          if (beyond(side, v, range)) {
            const id = stableId(u.unitId, "exc", side === "high" ? "h" : "l", t);
            const acc: ExcAcc = {
              id,
              startedAt: t,
              lastT: t,
              peakC: v,
              troughC: v,
              degreeMinutes: 0,
              alertMs: 0,
              actionMs: 0,
              tier: "alert",
              mkt: emptyMkt(),
              mktReadings: emptyMkt(),
            };
            mktAdd(acc.mktReadings, v, 1);
            ss.exc = acc;
            u.dirtyExc.add(id);
          }
        } else if (withinBy(side, v, range, p.hysteresisC)) {
          exc.lastT = t;
          this.closeExcursion(u, side, exc, t);
          ss.exc = null;
        } else {
          exc.lastT = t;
          if (v > exc.peakC) exc.peakC = v;
          if (v < exc.troughC) exc.troughC = v;
          mktAdd(exc.mktReadings, v, 1);
          u.dirtyExc.add(exc.id);
        }
        const open = ss.exc;
        const action = p.action[side];
        if (open && action !== undefined && beyond(side, v, action)) open.tier = "action";
      }
      for (const tier of TIERS) {
        const limit = p[tier][side];
        if (limit === undefined) continue;
        const ts = ss[tier];
        if (beyond(side, v, limit)) {
          if (ts.since === null) {
            ts.since = t;
            if (p.delayMs[tier] === 0) this.raiseTemperature(u, st, side, tier, t, t);
          }
        } else if (ts.alarmId !== null) {
          if (withinBy(side, v, limit, p.hysteresisC)) {
            this.clearAlarm(u, ts.alarmId, t, t);
            ts.alarmId = null;
            ts.since = null;
          }
        } else {
          ts.since = null;
        }
      }
    }

    // 4. Probe drift: spread between the probes' latest values.
    if (hi !== null && lo !== null && st.probes.size >= 2 && hi - lo > p.drift.toleranceC) {
      if (st.drift.since === null) st.drift.since = t;
    } else if (st.drift.alarmId !== null) {
      this.clearAlarm(u, st.drift.alarmId, t, t);
      st.drift = { since: null, alarmId: null };
    } else {
      st.drift.since = null;
    }
  }

  private raiseTemperature(
    u: Unit,
    st: State,
    side: Side,
    tier: Tier,
    raisedAt: number,
    decideT: number,
  ): void {
    const ts = st[side][tier];
    const limit = u.profile[tier][side];
    const alarmId = stableId(u.unitId, "temp", side === "high" ? "h" : "l", tier, ts.since ?? raisedAt);
    ts.alarmId = alarmId;
    const word = side === "high" ? "above" : "below";
    // The probe that decides the unit's temperature when the alarm is raised (the worst one).
    const probeId = side === "high" ? st.worstHighProbe : st.worstLowProbe;
    const value = side === "high" ? st.worstHigh : st.worstLow;
    const worst = probeId === null || value === null ? "" : `; worst probe ${probeId} at ${fmtC(value)} °C`;
    this.setAlarm(u, {
      alarmId,
      kind: "temperature",
      unitId: u.unitId,
      ...(probeId === null ? {} : { probeId }),
      tier,
      side,
      ...(value === null ? {} : { valueC: value }),
      limitC: limit,
      raisedAt,
      raiseT: decideT,
      message: `${u.unitId}: temperature ${word} the ${tier} limit ${limit} °C for ${fmtMin(u.profile.delayMs[tier])} or more${worst}`,
    });
  }

  private setAlarm(u: Unit, rec: AlarmRec): void {
    u.alarmRecords.set(rec.alarmId, rec);
    u.dirtyAlarms.add(rec.alarmId);
  }

  private clearAlarm(u: Unit, alarmId: string, clearedAt: number, decideT: number): void {
    const rec = u.alarmRecords.get(alarmId);
    if (!rec) return;
    rec.clearedAt = Math.max(clearedAt, rec.raisedAt);
    rec.clearT = decideT;
    u.dirtyAlarms.add(alarmId);
  }

  private closeExcursion(u: Unit, side: Side, exc: ExcAcc, t: number): void {
    u.excRecords.set(exc.id, { event: this.excursionRecord(u, side, exc, t), closeT: t });
    u.dirtyExc.add(exc.id);
  }

  private excursionRecord(
    u: Unit,
    side: Side,
    exc: ExcAcc,
    endedAt: number | null,
  ): Omit<ExcursionEvent, "eventId" | "type"> {
    const at = endedAt ?? exc.lastT;
    return {
      v: 1,
      siteId: u.siteId,
      at,
      excursionId: exc.id,
      unitId: u.unitId,
      unitKind: u.kind,
      side,
      tier: exc.tier,
      startedAt: exc.startedAt,
      endedAt,
      durationMs: at - exc.startedAt,
      peakC: exc.peakC,
      troughC: exc.troughC,
      degreeMinutes: round6(exc.degreeMinutes),
      minutesBeyond: { alert: round6(exc.alertMs / MIN), action: round6(exc.actionMs / MIN) },
      mktC: round6((exc.mkt.weight > 0 ? mktValue(exc.mkt) : mktValue(exc.mktReadings)) ?? exc.peakC),
    };
  }

  // ───────────────────── gaps and calibration ─────────────────────

  /** After new data for a unit: resumed / covered gaps, calibration due in event time. */
  private afterData(u: Unit, lateFrom: number): void {
    if (u.maxT === null) return;
    for (const g of u.gaps.values()) {
      if (g.gap.state !== "open") continue;
      let to = g.gap.to;
      if (to === null) {
        // Data resumed: connectivity is back. The gap spans [from, first data seen after it].
        if (u.maxT <= g.gap.from) continue;
        to = u.maxT;
        g.gap = { ...g.gap, to };
        u.dirtyGaps.add(g.gap.gapId);
        if (g.connAlarmId !== null) {
          const rec = u.outerAlarms.get(g.connAlarmId);
          if (rec && rec.clearedAt === undefined) {
            rec.clearedAt = Math.max(rec.raisedAt, to);
            u.dirtyAlarms.add(rec.alarmId);
          }
        }
      } else if (lateFrom > to) {
        continue; // nothing landed inside the gap
      }
      const hole = this.findHole(u, g.gap.from, to);
      if (hole === null) {
        g.gap = { ...g.gap, state: "covered" };
        u.dirtyGaps.add(g.gap.gapId);
      } else {
        g.holeEnd = hole;
      }
    }
    this.checkCalibration(u, u.maxT);
  }

  /** End of the first span longer than maxGapMs in [from, to], or null when continuous. */
  private findHole(u: Unit, from: number, to: number): number | null {
    const tl = u.timeline;
    let i = lowerBound(tl, { t: from, probeId: "" });
    let prevT = from;
    if (i >= tl.length || tl[i]!.t > from) {
      // from is the last reading before the silence; it may have been pruned
      if (i > 0) prevT = tl[i - 1]!.t;
    }
    for (; i < tl.length && tl[i]!.t <= to; i++) {
      const t = tl[i]!.t;
      if (t - prevT > u.profile.maxGapMs) return t;
      prevT = t;
    }
    return null;
  }

  private checkCalibration(u: Unit, at: number): void {
    for (const [probeId, due] of u.calibrationDue) {
      if (due === null || at < due) continue;
      const alarmId = stableId(u.unitId, "cal", probeId, due);
      if (u.outerAlarms.has(alarmId)) continue;
      u.outerAlarms.set(alarmId, {
        alarmId,
        kind: "calibration_overdue",
        unitId: u.unitId,
        probeId,
        raisedAt: due,
        raiseT: due,
        message: `Probe ${probeId} of ${u.unitId} is past its calibration due date`,
      });
      u.dirtyAlarms.add(alarmId);
    }
  }

  /** Processing time passes: silent units open connectivity gaps; stale gaps become recording gaps. */
  tick(now: number): EngineOutput[] {
    const out: EngineOutput[] = [];
    for (const u of this.units.values()) {
      const p = u.profile;
      if (u.maxT !== null && now - u.maxT > p.maxGapMs) {
        const gapId = stableId(u.unitId, "gap", u.maxT);
        if (!u.gaps.has(gapId)) {
          const connAlarmId = stableId(u.unitId, "conn", u.maxT);
          u.gaps.set(gapId, {
            gap: { gapId, siteId: u.siteId, unitId: u.unitId, from: u.maxT, to: null, state: "open" },
            connAlarmId,
            holeEnd: now,
          });
          u.dirtyGaps.add(gapId);
          u.outerAlarms.set(connAlarmId, {
            alarmId: connAlarmId,
            kind: "connectivity_gap",
            unitId: u.unitId,
            raisedAt: u.maxT + p.maxGapMs,
            raiseT: u.maxT,
            message: `No data from ${u.unitId} for more than ${fmtMin(p.maxGapMs)}`,
          });
          u.dirtyAlarms.add(connAlarmId);
        }
      }
      for (const g of u.gaps.values()) {
        if (g.gap.state === "open" && now - g.gap.from > p.recordingGapHorizonMs) {
          g.gap = { ...g.gap, state: "recording_gap" };
          u.dirtyGaps.add(g.gap.gapId);
          this.raiseRecordingGap(u, g.gap, now);
        }
      }
      this.checkCalibration(u, now);
      this.flush(u, out);
    }
    return out;
  }

  private raiseRecordingGap(u: Unit, gap: ConnectivityGap, at: number, probeId?: string): void {
    const alarmId = stableId(gap.gapId, "rec");
    if (u.outerAlarms.has(alarmId)) return;
    const to = gap.to === null ? "now" : new Date(gap.to).toISOString();
    u.outerAlarms.set(alarmId, {
      alarmId,
      kind: "recording_gap",
      unitId: u.unitId,
      ...(probeId !== undefined ? { probeId } : {}),
      raisedAt: at,
      raiseT: at,
      message: `No temperature record for ${u.unitId} from ${new Date(gap.from).toISOString()} to ${to}: exposure unknown, review as a deviation`,
    });
    u.dirtyAlarms.add(alarmId);
  }

  /** The agent evicted readings from its outbox (contract `gap` record): a recording gap now. */
  reportEvictedRange(g: GapRecord, siteId: string): EngineOutput[] {
    const out: EngineOutput[] = [];
    for (const unitId of g.unitIds) {
      const u = this.units.get(unitId);
      if (!u) continue;
      const gapId = stableId(g.gapId, unitId);
      if (u.gaps.has(gapId)) continue;
      const gap: ConnectivityGap = {
        gapId,
        siteId,
        unitId,
        from: g.fromObservedAt,
        to: g.toObservedAt,
        state: "recording_gap",
      };
      u.gaps.set(gapId, { gap, connAlarmId: null, holeEnd: g.toObservedAt });
      u.dirtyGaps.add(gapId);
      this.raiseRecordingGap(u, gap, g.at, g.probeIds.length === 1 ? g.probeIds[0] : undefined);
      this.flush(u, out);
    }
    return out;
  }

  // ───────────────────── acknowledgement ─────────────────────

  acknowledge(
    alarmId: string,
    ack: { by: string; comment: string; correctiveAction: string },
    at: number,
  ): EngineOutput[] {
    for (const u of this.units.values()) {
      if (!u.alarmRecords.has(alarmId) && !u.outerAlarms.has(alarmId)) continue;
      if (!this.acks.has(alarmId)) {
        this.acks.set(alarmId, { ...ack, at });
        u.dirtyAlarms.add(alarmId);
      }
      const out: EngineOutput[] = [];
      this.flush(u, out);
      return out;
    }
    throw new ColdtraceError("CT_ALARM_UNKNOWN", `acknowledge: no alarm ${JSON.stringify(alarmId)}`, {
      alarmId,
    });
  }

  // ───────────────────────── emission ─────────────────────────

  private alarmRec(u: Unit, id: string): AlarmRec | undefined {
    return u.alarmRecords.get(id) ?? u.outerAlarms.get(id);
  }

  private alarmEvent(u: Unit, rec: AlarmRec, type: AlarmEvent["type"]): AlarmEvent {
    const ack = this.acks.get(rec.alarmId);
    const showAck = ack !== undefined && type !== "alarm.raised";
    const showClear = rec.clearedAt !== undefined && type === "alarm.cleared";
    const at =
      type === "alarm.cleared" ? rec.clearedAt! : type === "alarm.acknowledged" ? ack!.at : rec.raisedAt;
    const body = {
      v: 1 as const,
      siteId: u.siteId,
      at,
      type,
      alarmId: rec.alarmId,
      kind: rec.kind,
      unitId: rec.unitId,
      ...(rec.probeId !== undefined ? { probeId: rec.probeId } : {}),
      ...(rec.tier !== undefined ? { tier: rec.tier } : {}),
      ...(rec.side !== undefined ? { side: rec.side } : {}),
      ...(rec.valueC !== undefined ? { valueC: rec.valueC } : {}),
      ...(rec.limitC !== undefined ? { limitC: rec.limitC } : {}),
      raisedAt: rec.raisedAt,
      message: rec.message,
      ...(showAck
        ? { acknowledged: { by: ack.by, comment: ack.comment, correctiveAction: ack.correctiveAction } }
        : {}),
      ...(showClear ? { clearedAt: rec.clearedAt } : {}),
    };
    return { eventId: eventIdFor(rec.alarmId, type.slice(6, 7), body), ...body };
  }

  private flush(u: Unit, out: EngineOutput[]): void {
    for (const id of u.dirtyExc) {
      const pub = this.pubExc.get(id);
      let rec = u.excRecords.get(id);
      if (!rec) {
        const side = SIDES.find((sd) => u.state[sd].exc?.id === id);
        const acc = side ? u.state[side].exc : null;
        if (side && acc) {
          const last = pub?.event;
          // Open and already published: only a material change is worth an update event.
          if (
            last &&
            last.type !== "excursion.closed" &&
            last.tier === acc.tier &&
            last.peakC === acc.peakC &&
            last.troughC === acc.troughC &&
            acc.lastT - acc.startedAt - last.durationMs < u.profile.cadence.outOfRangeRecordMs
          ) {
            continue;
          }
          rec = { event: this.excursionRecord(u, side, acc, null), closeT: null };
        }
      }
      if (!rec) {
        if (pub && !pub.superseded) {
          // Superseded: late data shows this excursion did not start here (open or closed).
          const e = pub.event;
          const body = {
            ...stripIds(e),
            at: e.startedAt,
            endedAt: e.startedAt,
            durationMs: 0,
            degreeMinutes: 0,
            minutesBeyond: { alert: 0, action: 0 },
          };
          this.emitExc(out, id, "excursion.closed", body);
          this.pubExc.get(id)!.superseded = true;
        }
        continue;
      }
      if (pub && pub.content === JSON.stringify(rec.event)) continue;
      if (!pub || pub.superseded) {
        this.emitExc(out, id, "excursion.opened", rec.event);
        if (rec.closeT !== null) this.emitExc(out, id, "excursion.closed", rec.event);
      } else if (rec.closeT !== null) {
        this.emitExc(out, id, "excursion.closed", rec.event);
      } else {
        this.emitExc(out, id, "excursion.updated", rec.event);
      }
    }
    u.dirtyExc.clear();

    for (const id of u.dirtyAlarms) {
      const rec = this.alarmRec(u, id);
      let pub = this.pubAlarms.get(id);
      if (!rec) {
        if (pub?.raised && pub.clearedAt === undefined) {
          // Withdrawn: late data shows the condition never lasted the delay. Cleared at raisedAt.
          const last = this.lastAlarm.get(id);
          if (last) {
            const body = {
              ...last,
              type: "alarm.cleared" as const,
              at: last.raisedAt,
              clearedAt: last.raisedAt,
            };
            const { eventId: _, ...rest } = body;
            const ev = { ...rest, eventId: eventIdFor(id, "w", rest) };
            out.push({ type: "alarm", event: ev });
            this.lastAlarm.set(id, ev);
          }
          pub.clearedAt = last?.raisedAt ?? 0;
        }
        continue;
      }
      if (!pub) {
        pub = { raised: false, acked: false, clearedAt: undefined, unitId: u.unitId };
        this.pubAlarms.set(id, pub);
      }
      if (!pub.raised || (pub.clearedAt !== undefined && rec.clearedAt === undefined)) {
        this.pushAlarm(out, this.alarmEvent(u, rec, "alarm.raised"));
        pub.raised = true;
        pub.clearedAt = undefined;
      }
      if (!pub.acked && this.acks.has(id)) {
        this.pushAlarm(out, this.alarmEvent(u, rec, "alarm.acknowledged"));
        pub.acked = true;
      }
      // Cleared, or late data moved the moment it cleared: (re)publish the clear.
      if (rec.clearedAt !== undefined && pub.clearedAt !== rec.clearedAt) {
        this.pushAlarm(out, this.alarmEvent(u, rec, "alarm.cleared"));
        pub.clearedAt = rec.clearedAt;
      }
    }
    u.dirtyAlarms.clear();

    for (const id of u.dirtyGaps) {
      const g = u.gaps.get(id);
      if (g) out.push({ type: "gap", gap: { ...g.gap } });
    }
    u.dirtyGaps.clear();
  }

  private readonly lastAlarm = new Map<string, AlarmEvent>();

  private pushAlarm(out: EngineOutput[], ev: AlarmEvent): void {
    out.push({ type: "alarm", event: ev });
    this.lastAlarm.set(ev.alarmId, ev);
  }

  private emitExc(
    out: EngineOutput[],
    id: string,
    type: ExcursionEvent["type"],
    body: Omit<ExcursionEvent, "eventId" | "type">,
  ): void {
    const withType = { ...body, type };
    const event: ExcursionEvent = { eventId: eventIdFor(id, type.slice(10, 11), withType), ...withType };
    out.push({ type: "excursion", event });
    this.pubExc.set(id, { content: JSON.stringify(body), event, superseded: false });
  }

  // ───────────────────────── pruning ─────────────────────────

  /** Bound memory: drop readings older than the lateness window (keep a checkpoint before them). */
  private prune(u: Unit): void {
    if (u.maxT === null) return;
    const cutoff = u.maxT - this.lateness;
    const byCount = u.timeline.length - this.maxRetained;
    const first = u.timeline[0];
    if (!first || (first.t > cutoff && byCount <= 0)) return;
    // Latest checkpoint older than the lateness window, or leaving at most maxRetained readings.
    let c = 0;
    for (let i = 1; i < u.checkpoints.length; i++) {
      const k = u.checkpoints[i]!;
      if (k.t <= cutoff || k.index <= byCount) c = i;
      else break;
    }
    const cp = u.checkpoints[c]!;
    // Prune in chunks, not on every batch.
    if (c === 0 || cp.index < Math.max(this.every * 4, u.timeline.length / 4)) return;
    const drop = cp.index;
    u.timeline = u.timeline.slice(drop);
    u.processed -= drop;
    u.lastCheckpointIndex -= drop;
    u.checkpoints = u.checkpoints.slice(c).map((k) => ({ ...k, index: k.index - drop }));
    const keepAfter = cp.t - this.retention;
    for (const [id, rec] of u.excRecords) {
      if (rec.closeT !== null && rec.closeT < keepAfter) {
        u.excRecords.delete(id);
        this.pubExc.delete(id);
      }
    }
    for (const map of [u.alarmRecords, u.outerAlarms]) {
      for (const [id, rec] of map) {
        if (rec.clearedAt !== undefined && rec.clearedAt < keepAfter) {
          map.delete(id);
          this.pubAlarms.delete(id);
          this.lastAlarm.delete(id);
          this.acks.delete(id);
        }
      }
    }
    const oldestHour = Math.floor((u.maxT - u.profile.rollingMktWindowMs) / HOUR) - 1;
    for (const h of u.hours.keys()) if (h < oldestHour) u.hours.delete(h);
  }

  // ───────────────────────── queries ─────────────────────────

  /** Current excursion records (open and closed), canonical: independent of arrival order. */
  excursions(unitId?: string): ExcursionEvent[] {
    const out: ExcursionEvent[] = [];
    for (const u of this.unitsFor(unitId)) {
      for (const [id, rec] of u.excRecords) {
        const body = { ...rec.event, type: "excursion.closed" } as const;
        out.push({ eventId: eventIdFor(id, "s", body), ...body });
      }
      for (const side of SIDES) {
        const acc = u.state[side].exc;
        if (!acc) continue;
        const body = { ...this.excursionRecord(u, side, acc, null), type: "excursion.opened" } as const;
        out.push({ eventId: eventIdFor(acc.id, "s", body), ...body });
      }
    }
    return out.sort((a, b) => a.startedAt - b.startedAt || cmpStr(a.excursionId, b.excursionId));
  }

  /** Current alarm records: raised, acknowledged or cleared. */
  alarms(unitId?: string): AlarmEvent[] {
    const out: AlarmEvent[] = [];
    for (const u of this.unitsFor(unitId)) {
      for (const map of [u.alarmRecords, u.outerAlarms]) {
        for (const rec of map.values()) {
          const type =
            rec.clearedAt !== undefined
              ? "alarm.cleared"
              : this.acks.has(rec.alarmId)
                ? "alarm.acknowledged"
                : "alarm.raised";
          out.push(this.alarmEvent(u, rec, type));
        }
      }
    }
    return out.sort((a, b) => a.raisedAt - b.raisedAt || cmpStr(a.alarmId, b.alarmId));
  }

  /** Connectivity and recording gaps known for a unit (or all). */
  gaps(unitId?: string): ConnectivityGap[] {
    const out: ConnectivityGap[] = [];
    for (const u of this.unitsFor(unitId)) for (const g of u.gaps.values()) out.push({ ...g.gap });
    return out.sort((a, b) => a.from - b.from || cmpStr(a.gapId, b.gapId));
  }

  /**
   * Time-weighted MKT of the unit's warmest probe over the rolling window (30 days storage,
   * 24 h transport) ending at the latest reading. Hourly buckets, so the window edge is ±1 h.
   */
  rollingMkt(unitId: string): { windowMs: number; mktC: number | null } {
    const u = this.units.get(unitId);
    if (!u) return { windowMs: 0, mktC: null };
    const windowMs = u.profile.rollingMktWindowMs;
    if (u.maxT === null) return { windowMs, mktC: null };
    const fromH = Math.floor((u.maxT - windowMs) / HOUR);
    const parts: Mkt[] = [];
    for (const [h, b] of u.hours) if (h >= fromH && h !== u.state.hour.h) parts.push(b.mkt);
    if (u.state.hour.h >= fromH) parts.push(u.state.hour.mkt);
    const v = mktValue(...parts);
    return { windowMs, mktC: v === null ? null : round6(v) };
  }

  private unitsFor(unitId?: string): Unit[] {
    if (unitId === undefined) return [...this.units.values()];
    const u = this.units.get(unitId);
    return u ? [u] : [];
  }
}

// ───────────────────────── helpers ─────────────────────────

function beyond(side: Side, v: number, limit: number): boolean {
  return side === "high" ? v > limit : v < limit;
}

/** Back inside `limit` by at least the hysteresis. */
function withinBy(side: Side, v: number, limit: number, hysteresisC: number): boolean {
  return side === "high" ? v <= limit - hysteresisC : v >= limit + hysteresisC;
}

function fmtMin(ms: number): string {
  return `${Math.round((ms / MIN) * 10) / 10} min`;
}

function fmtC(c: number): string {
  return `${Math.round(c * 100) / 100}`;
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function stripIds<T extends { eventId: string; type: string }>(e: T): Omit<T, "eventId" | "type"> {
  const { eventId: _e, type: _t, ...rest } = e;
  return rest;
}

/** Stable event id: the thing's id, the step, and a hash of the content (a resend has the same id). */
function eventIdFor(id: string, step: string, body: unknown): string {
  return `${id}:${step}:${fnv36(JSON.stringify(body))}`;
}

function lowerBound(arr: readonly Entry[], key: { t: number; probeId: string }): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmpKey(arr[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function mergeSorted(a: Entry[], b: Entry[]): Entry[] {
  const out: Entry[] = new Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = cmpKey(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}
