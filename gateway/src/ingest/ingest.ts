/**
 * Ingest: every MQTT message from agents goes through here, in arrival order.
 *
 *   message ─▶ decodeMessage (contract) ─✗─▶ count by reason, warn with topic, drop (stored())
 *      │
 *      ▼ queue (bounded: above maxPendingReadings the MQTT client stops reading → TCP backpressure)
 *   coalesce telemetry for batchMaxDelayMs or batchMaxReadings
 *      ▼
 *   ReadingStore.append (dedupe by agentId+seq) ─▶ only the NEW readings ─▶ engine.ingest
 *      ▼
 *   engine outputs ─▶ RecordStore (alarms, excursions, gaps) ─▶ every message's stored() (PUBACK)
 *      ▼
 *   EventSink (QoS 1), called in order without waiting for the previous event's PUBACK
 *
 * Two callbacks per message (see `handleMessage`): `resume` lets the MQTT client parse the next
 * packet at once (or later, for backpressure), `stored` says the message's data is committed,
 * so the connection may send its PUBACK. A broker that got no PUBACK redelivers the message to
 * the gateway's persistent session after a crash; the store's (agentId, seq) dedupe makes the
 * redelivery harmless. A message whose processing failed for good (a birth whose upsert threw)
 * is logged and acknowledged too, or every later PUBACK would wait behind it (PUBACKs go out in
 * order, [MQTT-4.6.0-2]); telemetry is retried until it is stored.
 *
 * Births register units and probes (RecordStore and engine), agent states update the
 * online state (a last will of an older session is ignored, Sparkplug bdSeq style), gap
 * records go to the engine as evicted ranges — narrowed to what did not arrive, or dropped when
 * everything did (readings in flight when the agent evicted them). Telemetry of a unit no birth
 * announced is stored, counted and warned about, not evaluated. A failing store append is retried with backoff
 * and the batch is kept; nothing here ever throws into the MQTT client.
 */
import {
  type AgentState,
  type Birth,
  decodeMessage,
  formatTopic,
  type GapRecord,
  isColdtraceError,
  type Movement,
} from "@coldtrace/protocol";
import type { Logger } from "pino";
import type { DomainEvent as EngineOutput, EventKind, EventSink, GapRecordRow } from "../kernel/events.ts";
import { WarnThrottle } from "../kernel/warn-throttle.ts";
import type {
  AgentRecord,
  AlarmRecord,
  ExcursionRecord,
  ReadingStore,
  RecordStore,
  StoredReading,
} from "../storage/types.ts";
import type { IngestMetrics } from "./metrics.ts";
import type { EnginePort, IngestListeners, UnitRegistration } from "./ports.ts";

export interface IngestOptions {
  batchMaxDelayMs: number;
  batchMaxReadings: number;
  maxPendingReadings: number;
}

export interface IngestDeps {
  readings: ReadingStore;
  records: RecordStore;
  engine: EnginePort;
  sink: EventSink;
  metrics: IngestMetrics;
  log: Logger;
  options: IngestOptions;
  /** Clock seam: arrival time (`receivedAt`). */
  now?: () => number;
  /** The configured profile for a unit, or undefined for the engine's defaults. */
  profileFor?: (unit: { unitId: string; kind: string }) => unknown;
  listeners?: IngestListeners;
}

type Work = { stored: (() => void)[] } & (
  | { kind: "telemetry"; readings: StoredReading[] }
  | { kind: "birth"; siteId: string; payload: Birth }
  | { kind: "agentState"; siteId: string; payload: AgentState }
  | { kind: "gap"; siteId: string; payload: GapRecord }
  | { kind: "movement"; payload: Movement }
);

const noop = () => {};

const MAX_RETRY_DELAY_MS = 5000;
const UNKNOWN_UNIT_WARN_EVERY_MS = 60_000;
/** An agent's `lastSeenAt` follows its telemetry to within this much (one record write per agent per period). */
export const LAST_SEEN_RESOLUTION_MS = 30_000;
/** Evicted ranges longer than this keep the time window the agent reported. */
const MAX_NARROWED_SEQS = 1_000_000;

export function alarmRecordOf(e: EngineOutput & { type: "alarm" }): AlarmRecord {
  const { v: _v, type, eventId: _id, at, ...rest } = e.event;
  const state =
    type === "alarm.raised" ? "raised" : type === "alarm.acknowledged" ? "acknowledged" : "cleared";
  return { ...rest, state, updatedAt: at };
}

export function excursionRecordOf(e: EngineOutput & { type: "excursion" }): ExcursionRecord {
  const { v: _v, type: _t, eventId: _id, at, ...rest } = e.event;
  return { ...rest, updatedAt: at, detail: e.detail ?? {} };
}

export class Ingest {
  readonly #d: IngestDeps;
  readonly #log: Logger;
  readonly #now: () => number;
  #queue: Work[] = [];
  #pendingReadings = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #belowLimit: (() => void)[] = [];
  #idle: (() => void)[] = [];
  #closed = false;
  /** Event publishes not settled yet (eventsPublished waits for them). */
  readonly #publishing = new Set<Promise<void>>();
  readonly #units = new Map<string, string>();
  readonly #agents = new Map<string, AgentRecord>();
  readonly #unknownUnitWarnings = new WarnThrottle(UNKNOWN_UNIT_WARN_EVERY_MS);
  /** Agents whose telemetry is due to move their `lastSeenAt` (throttled per agent). */
  readonly #lastSeen = new WarnThrottle(LAST_SEEN_RESOLUTION_MS);
  readonly #seenDue = new Map<string, number>();

  constructor(deps: IngestDeps) {
    this.#d = deps;
    this.#log = deps.log.child({ component: "ingest" });
    this.#now = deps.now ?? Date.now;
  }

  /** Load known units and agents from the RecordStore and register the units with the engine. */
  async start(): Promise<void> {
    const [units, probes, agents] = await Promise.all([
      this.#d.records.listUnits(),
      this.#d.records.listProbes(),
      this.#d.records.listAgents(),
    ]);
    for (const a of agents) this.#agents.set(a.agentId, a);
    for (const u of units) {
      const probeIds = probes.filter((p) => p.unitId === u.unitId).map((p) => p.probeId);
      this.#register({ unitId: u.unitId, siteId: u.siteId, kind: u.kind, probeIds });
    }
  }

  get pendingReadings(): number {
    return this.#pendingReadings;
  }

  /**
   * For the gateway connection (`connectGateway` onMessage). `resume`: the MQTT client may parse
   * the next packet; held while more than maxPendingReadings wait, which is TCP backpressure.
   * `stored`: the message's data is committed (or the message was rejected), send its PUBACK.
   */
  handleMessage(
    topic: string,
    payload: Buffer | Uint8Array,
    resume: () => void,
    stored: () => void = noop,
  ): void {
    this.accept(topic, payload, stored);
    if (this.#pendingReadings < this.#d.options.maxPendingReadings || this.#closed) resume();
    else this.#belowLimit.push(resume);
  }

  /** Validate and queue one message; `stored` once its data is committed. Never throws. */
  accept(topic: string, payload: Buffer | Uint8Array, stored: () => void = noop): void {
    let msg: ReturnType<typeof decodeMessage>;
    try {
      msg = decodeMessage(topic, payload);
    } catch (err) {
      const reason = isColdtraceError(err) ? err.code : "unexpected";
      this.#d.metrics.reject(reason);
      this.#log.warn({ topic, reason: (err as Error).message }, "message rejected");
      // Redelivering it would not make it valid; the connection keeps PUBACKs in order.
      stored();
      return;
    }
    this.#d.metrics.message(msg.kind);
    const now = this.#now();
    switch (msg.kind) {
      case "telemetry": {
        const { siteId, agentId, unitId } = msg.topic;
        const readings = msg.payload.readings.map(
          (r): StoredReading => ({
            agentId,
            seq: r.seq,
            siteId,
            unitId,
            probeId: r.probeId,
            observedAt: r.observedAt,
            receivedAt: now,
            tempC: r.tempC,
            quality: r.quality,
            backfill: r.backfill,
            ...(r.timeQuality === undefined ? {} : { timeQuality: r.timeQuality }),
          }),
        );
        this.#d.metrics.readingsReceived += readings.length;
        if (this.#lastSeen.due(agentId, 1, now) !== undefined) this.#seenDue.set(agentId, now);
        const last = this.#queue.at(-1);
        if (
          last?.kind === "telemetry" &&
          last.readings.length + readings.length <= this.#d.options.batchMaxReadings
        ) {
          for (const r of readings) last.readings.push(r);
          last.stored.push(stored);
        } else {
          this.#queue.push({ kind: "telemetry", readings, stored: [stored] });
        }
        this.#pendingReadings += readings.length;
        this.#d.metrics.pendingReadings = this.#pendingReadings;
        break;
      }
      case "birth":
        this.#queue.push({ kind: "birth", siteId: msg.topic.siteId, payload: msg.payload, stored: [stored] });
        break;
      case "agentState":
        this.#queue.push({
          kind: "agentState",
          siteId: msg.topic.siteId,
          payload: msg.payload,
          stored: [stored],
        });
        break;
      case "gap":
        this.#queue.push({ kind: "gap", siteId: msg.topic.siteId, payload: msg.payload, stored: [stored] });
        break;
      case "movement":
        this.#queue.push({ kind: "movement", payload: msg.payload, stored: [stored] });
        break;
      default:
        // Health is retained on the broker for whoever wants it; events are our own.
        stored();
        return;
    }
    this.#schedule();
  }

  /**
   * Group commit: while a drain runs, arriving telemetry merges into the queued batch, so load
   * makes batches bigger without adding latency when idle. `batchMaxDelayMs` > 0 adds a wait
   * to coalesce more when idle; 0 starts on the next turn of the event loop (setImmediate), after
   * the rest of the current socket read has been parsed.
   */
  #schedule(): void {
    if (this.#running || this.#closed || this.#timer) return;
    const start = () => {
      this.#timer = undefined;
      if (!this.#running) this.#running = this.#drain();
    };
    if (this.#pendingReadings >= this.#d.options.batchMaxReadings) {
      this.#running = this.#drain();
      return;
    }
    const delay = this.#d.options.batchMaxDelayMs;
    this.#timer = delay === 0 ? (setImmediate(start) as unknown as NodeJS.Timeout) : setTimeout(start, delay);
  }

  /** Process everything queued now. */
  async flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      clearImmediate(this.#timer as unknown as NodeJS.Immediate);
    }
    this.#timer = undefined;
    if (this.#running) await this.#running;
    if (this.#queue.length > 0) {
      this.#running = this.#drain();
      await this.#running;
    }
  }

  /** Resolves when nothing is queued or being processed. */
  idle(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  async close(): Promise<void> {
    await this.flush();
    await this.eventsPublished();
    this.#closed = true;
    for (const done of this.#belowLimit.splice(0)) done();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const work = this.#queue.shift() as Work;
        try {
          await this.#process(work);
        } catch (err) {
          this.#log.error({ err, work: work.kind }, "ingest step failed");
        }
        for (const stored of work.stored) stored();
        if (work.kind === "telemetry") {
          this.#pendingReadings -= work.readings.length;
          this.#d.metrics.pendingReadings = this.#pendingReadings;
          if (this.#pendingReadings < this.#d.options.maxPendingReadings) {
            for (const done of this.#belowLimit.splice(0)) done();
          }
        }
      }
    } finally {
      this.#running = undefined;
      if (this.#queue.length > 0) this.#schedule();
      else for (const r of this.#idle.splice(0)) r();
    }
  }

  async #process(work: Work): Promise<void> {
    switch (work.kind) {
      case "telemetry":
        return this.#telemetry(work.readings);
      case "birth":
        return this.#birth(work.siteId, work.payload);
      case "agentState":
        return this.#agentState(work.siteId, work.payload);
      case "gap":
        return this.#gap(work.siteId, work.payload);
      case "movement":
        await this.#d.listeners?.onMovement?.(work.payload);
        return;
    }
  }

  async #telemetry(readings: StoredReading[]): Promise<void> {
    let delay = 100;
    for (;;) {
      try {
        const { inserted, duplicates } = await this.#d.readings.append(readings);
        this.#d.metrics.readingsStored += inserted.length;
        await this.#touchAgents();
        this.#d.metrics.readingsDuplicate += duplicates;
        if (inserted.length > 0) this.#notify("onReadingsStored", inserted);
        const known = inserted.filter((r) => this.#units.has(r.unitId));
        if (known.length < inserted.length) this.#unknownUnits(inserted);
        if (known.length > 0) await this.#outputs(this.#d.engine.ingest(known));
        return;
      } catch (err) {
        this.#d.metrics.storeFailures++;
        if (this.#closed) throw err;
        this.#log.error({ err, readings: readings.length, retryInMs: delay }, "reading append failed");
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
      }
    }
  }

  /**
   * Readings of a unit that no birth announced are stored but cannot be judged (no kind, no
   * profile): count them, and warn at most once a minute per unit, so a misconfigured agent
   * (telemetry for a unit missing from its birth) does not go unnoticed.
   */
  #unknownUnits(inserted: readonly StoredReading[]): void {
    const now = this.#now();
    for (const [unitId, rs] of Map.groupBy(
      inserted.filter((r) => !this.#units.has(r.unitId)),
      (r) => r.unitId,
    )) {
      this.#d.metrics.readingsUnknownUnit += rs.length;
      const count = this.#unknownUnitWarnings.due(unitId, rs.length, now);
      if (count === undefined) continue;
      const r = rs[0] as StoredReading;
      this.#log.warn(
        { siteId: r.siteId, agentId: r.agentId, unitId, readings: count },
        "readings for a unit no agent birth announced: stored, not evaluated for excursions",
      );
    }
  }

  /** Move `lastSeenAt` of the agents whose telemetry came since their last update (at most once per LAST_SEEN_RESOLUTION_MS). */
  async #touchAgents(): Promise<void> {
    for (const [agentId, at] of this.#seenDue) {
      this.#seenDue.delete(agentId);
      const known = this.#agents.get(agentId);
      if (!known || known.lastSeenAt >= at) continue;
      const agent = { ...known, lastSeenAt: at };
      this.#agents.set(agentId, agent);
      try {
        await this.#d.records.upsertAgent(agent);
      } catch (err) {
        this.#log.warn({ err, agentId }, "could not record the agent's last telemetry time");
      }
    }
  }

  #register(unit: UnitRegistration): void {
    this.#units.set(unit.unitId, unit.siteId);
    const profile = this.#d.profileFor?.(unit);
    this.#d.engine.registerUnit(profile === undefined ? unit : { ...unit, profile });
  }

  async #birth(siteId: string, b: Birth): Promise<void> {
    const now = this.#now();
    const agent: AgentRecord = {
      agentId: b.agentId,
      siteId,
      sessionId: b.sessionId,
      state: "online",
      lastSeenAt: now,
      birth: b,
      configHash: b.configHash,
    };
    this.#agents.set(b.agentId, agent);
    await this.#d.records.upsertAgent(agent);
    this.#notify("onAgent", agent);
    for (const u of b.units) {
      await this.#d.records.upsertUnit({
        unitId: u.unitId,
        siteId,
        kind: u.kind,
        ...(u.name === undefined ? {} : { name: u.name }),
      });
    }
    for (const p of b.probes) {
      await this.#d.records.upsertProbe({
        probeId: p.probeId,
        unitId: p.unitId,
        siteId,
        agentId: b.agentId,
        driver: p.driver,
        intervalMs: p.intervalMs,
        calibrationOffsetC: p.calibrationOffsetC,
        calibrationDueAt: p.calibrationDueAt,
      });
    }
    for (const u of b.units)
      this.#register({ unitId: u.unitId, siteId, kind: u.kind, probeIds: [...u.probeIds] });
    this.#log.info({ agentId: b.agentId, siteId, units: b.units.length }, "agent birth");
  }

  async #agentState(siteId: string, s: AgentState): Promise<void> {
    const known = this.#agents.get(s.agentId);
    // A last will from an older session must not mark a reconnected agent offline.
    if (known && s.state === "offline" && known.sessionId !== s.sessionId) return;
    const agent: AgentRecord = {
      agentId: s.agentId,
      siteId,
      sessionId: s.sessionId,
      state: s.state,
      lastSeenAt: this.#now(),
      birth: known?.birth ?? null,
      configHash: known?.configHash ?? null,
    };
    this.#agents.set(s.agentId, agent);
    await this.#d.records.upsertAgent(agent);
    this.#notify("onAgent", agent);
    this.#log.info({ agentId: s.agentId, state: s.state }, "agent state");
  }

  async #gap(siteId: string, g: GapRecord): Promise<void> {
    // An agent evicts its oldest readings, and those may have been in flight: published, and
    // stored here, just not acknowledged yet when the outbox overflowed. Telemetry that came
    // before this record on the connection is committed by now (ingest keeps arrival order), so
    // a range whose every seq is stored lost nothing: no recording gap, no quarantine.
    let lost = { from: g.fromObservedAt, to: g.toObservedAt };
    if (g.reason === "outbox_evicted") {
      const missing = await this.#d.readings.missingSeqs(g.agentId, g.fromSeq, g.toSeq);
      if (missing === 0) {
        this.#d.metrics.gapsFullyReceived++;
        this.#log.info(
          { siteId, agentId: g.agentId, gapId: g.gapId, fromSeq: g.fromSeq, toSeq: g.toSeq },
          "evicted readings had all reached the gateway: no recording gap",
        );
        return;
      }
      lost = await this.#lostWindow(g);
      if (lost.from !== g.fromObservedAt || lost.to !== g.toObservedAt) {
        this.#log.info(
          {
            siteId,
            agentId: g.agentId,
            gapId: g.gapId,
            missing,
            reported: [g.fromObservedAt, g.toObservedAt],
            lost: [lost.from, lost.to],
          },
          "part of the evicted readings had reached the gateway: recording gap narrowed to the rest",
        );
      }
    }
    const row: GapRecordRow = {
      gapId: g.gapId,
      agentId: g.agentId,
      siteId,
      reason: g.reason,
      unitIds: [...g.unitIds],
      probeIds: [...g.probeIds],
      fromObservedAt: lost.from,
      toObservedAt: lost.to,
      fromSeq: g.fromSeq,
      toSeq: g.toSeq,
      droppedCount: g.droppedCount,
      at: g.at,
    };
    await this.#d.records.upsertGap(row);
    await this.#d.listeners?.onGap?.(row);
    await this.#outputs(this.#d.engine.reportEvictedRange(row));
  }

  /**
   * When the readings of an evicted range were lost, from what did arrive: an agent numbers its
   * readings in the order it takes them, so a run of missing seqs a..b was observed between the
   * readings a−1 and b+1 (or the range's own ends). Seqs not found among the range's units
   * count as missing, which can only widen the window. Very long ranges keep the reported one.
   */
  async #lostWindow(g: GapRecord): Promise<{ from: number; to: number }> {
    const reported = { from: g.fromObservedAt, to: g.toObservedAt };
    if (g.toSeq - g.fromSeq >= MAX_NARROWED_SEQS) return reported;
    const present = new Map<number, number>();
    for (const unitId of g.unitIds) {
      const rows = await this.#d.readings.range({ unitId, from: g.fromObservedAt, to: g.toObservedAt + 1 });
      for (const r of rows)
        if (r.agentId === g.agentId && r.seq >= g.fromSeq && r.seq <= g.toSeq)
          present.set(r.seq, r.observedAt);
    }
    let from = Number.POSITIVE_INFINITY;
    let to = Number.NEGATIVE_INFINITY;
    for (let seq = g.fromSeq; seq <= g.toSeq; seq++) {
      if (present.has(seq)) continue;
      const first = seq;
      while (seq + 1 <= g.toSeq && !present.has(seq + 1)) seq++;
      from = Math.min(from, present.get(first - 1) ?? g.fromObservedAt);
      to = Math.max(to, present.get(seq + 1) ?? g.toObservedAt);
    }
    return from <= to ? { from, to } : reported;
  }

  /**
   * Tell the listeners what was just stored (the console's live view). They are synchronous and
   * must not fail; if one does anyway, ingest goes on: the data is committed already.
   */
  #notify<K extends "onReadingsStored" | "onAgent">(
    name: K,
    arg: Parameters<NonNullable<IngestListeners[K]>>[0],
  ): void {
    try {
      (this.#d.listeners?.[name] as ((a: typeof arg) => void) | undefined)?.(arg);
    } catch (err) {
      this.#log.error({ err, listener: name }, "ingest listener failed");
    }
  }

  /** Persist engine outputs, then publish them. Used by ingest, acknowledgements and ticks. */
  async #outputs(outputs: readonly EngineOutput[]): Promise<void> {
    if (outputs.length === 0) return;
    for (const o of outputs) {
      if (o.type === "alarm") await this.#d.records.upsertAlarm(alarmRecordOf(o));
      else if (o.type === "excursion") await this.#d.records.upsertExcursion(excursionRecordOf(o));
      else await this.#d.records.upsertGap(o.gap);
    }
    // Handed to the sink at once and in order (the MQTT client writes them in call order and
    // keeps them in flight together), not awaited here: while ingest holds the MQTT client for
    // backpressure, the client cannot read the PUBACKs of our own events, so awaiting them
    // would deadlock. Chaining each publish behind the previous one's PUBACK made a burst of
    // events wait one broker round trip each. The records are already stored above.
    for (const o of outputs) {
      if (o.type === "gap") continue;
      this.#logOutput(o);
      const topic = formatTopic({ kind: o.type, siteId: o.event.siteId, unitId: o.event.unitId });
      const p = this.#publish(o.type, topic, o.event);
      this.#publishing.add(p);
      void p.finally(() => this.#publishing.delete(p));
    }
    // Listeners (the lots module: correlation, exposure, quarantine through its own outbox) run
    // after the events are handed on, so an alarm never waits for lot bookkeeping.
    await this.#d.listeners?.onEngineOutputs?.(outputs);
  }

  /** One info line per alarm step and per excursion opened or closed (updates are too many). */
  #logOutput(o: EngineOutput & { type: "alarm" | "excursion" }): void {
    if (o.type === "alarm") {
      const { siteId, unitId, alarmId, kind, tier, probeId, type } = o.event;
      this.#log.info({ siteId, unitId, alarmId, kind, tier, probeId }, type.replace(".", " "));
    } else if (o.event.type !== "excursion.updated") {
      const { siteId, unitId, excursionId, side, tier, type } = o.event;
      this.#log.info({ siteId, unitId, excursionId, side, tier }, type.replace(".", " "));
    }
  }

  async #publish(kind: EngineOutput["type"] & EventKind, topic: string, event: { eventId: string }) {
    try {
      await this.#d.sink.publish(kind, topic, event);
      this.#d.metrics.eventsPublished++;
    } catch (err) {
      this.#d.metrics.eventPublishFailures++;
      this.#log.error({ err, topic, eventId: event.eventId }, "event publish failed");
    }
  }

  /** Resolves when every event handed to the sink so far has been published (or failed). */
  async eventsPublished(): Promise<void> {
    await Promise.all([...this.#publishing]);
  }

  /** Acknowledge an alarm through the engine, so the event is stored and published. */
  async acknowledge(
    alarmId: string,
    ack: { by: string; comment: string; correctiveAction: string },
  ): Promise<EngineOutput[]> {
    const outputs = this.#d.engine.acknowledge(alarmId, ack, this.#now());
    await this.#outputs(outputs);
    await this.eventsPublished();
    return outputs;
  }

  /** Advance the engine's clock (agent offline, connectivity gaps …). */
  async tick(): Promise<void> {
    await this.#outputs(this.#d.engine.tick(this.#now()));
  }
}
