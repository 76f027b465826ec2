/**
 * The agent runtime: wires acquisition to the outbox, the publisher and the local alarm.
 *
 *   acquisition ──reading──▶ (same tick, one transaction) outbox.append ──▶ publisher.notify
 *        │                                                     └─ gap records ─▶ publisher.notify({gaps})
 *        └──────reading──▶ local alarm ──▶ acquisition.writeCoil (works with no network)
 *   every healthIntervalMs, and when a probe changes state: probe health (+ outbox depth) ─▶ publisher
 *   every statusIntervalMs: status rows in the outbox DB ─▶ read by `coldtrace-agent status`
 *   time keeper: each reading stamped (monotonic time, time quality); telemetry held while the
 *   clock is untrusted; once it is trusted, waiting readings re-anchored in the outbox
 *
 * The constructor only stores dependencies; work happens in start()/stop() (zigbee2mqtt's
 * extension habit). Acquisition is injected, so tests feed readings at that seam.
 */
import { readFileSync } from "node:fs";
import type { ProbeHealth } from "@coldtrace/protocol";
import type { Logger } from "pino";
import { LocalAlarm, type LocalAlarmSnapshot } from "../alarm/index.ts";
import { type Clock, systemClock } from "../clock.ts";
import { type AgentConfig, configHash } from "../config/index.ts";
import { type NewReading, Outbox } from "../outbox/index.ts";
import { type BirthTemplate, type MqttSettings, Publisher } from "../publisher/index.ts";
import { type ClockSyncSource, syncSourceFor, TimeKeeper, type TimeSource } from "../timekeeping/index.ts";

export type ProbeHealthEntry = ProbeHealth["probes"][number];

/** What the runtime needs from acquisition (edge-agent/src/acquisition). */
export interface AcquisitionPort {
  start(onReading: (r: NewReading) => void): Promise<void>;
  stop(): Promise<void>;
  health(): ProbeHealthEntry[];
  writeCoil(busId: string, slaveId: number, coil: number, on: boolean): Promise<void>;
}

export interface AgentDeps {
  config: AgentConfig;
  acquisition: AcquisitionPort;
  /** The root logger; the agent makes per-component children with the configured levels. */
  log: Logger;
  clock?: Clock;
  /** Wall and monotonic time for clock integrity (tests pass a fake with a jump). */
  time?: TimeSource;
  /** Whether the wall clock is synchronised; default from `agent.clock.sync`. */
  clockSync?: ClockSyncSource;
  /** The pushed configuration version this runs (remote configuration), for the birth. */
  configVersion?: number;
  /** Sees every reading after it was taken (the remote-configuration supervisor's trial). */
  onReading?: (r: NewReading) => void;
  /** Called with the publisher before it connects (to catch its first messages and events). */
  onPublisher?: (publisher: Publisher) => void;
  /** The local alarm state of the agent this one replaces (a reconfiguration). */
  alarmState?: LocalAlarmSnapshot;
}

/** Set by the bundle build (deploy/build.ts); from source, read from package.json. */
declare const __AGENT_VERSION__: string | undefined;

export const AGENT_VERSION: string =
  typeof __AGENT_VERSION__ === "string"
    ? __AGENT_VERSION__
    : (
        JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
          version: string;
        }
      ).version;

/** A child logger for one component, at the level configured for it (logging.components). */
export function componentLogger(root: Logger, config: AgentConfig, component: string): Logger {
  const level = config.logging.components[component];
  return level ? root.child({ component }, { level }) : root.child({ component });
}

/** The publisher's settings from the `mqtt` section. */
export function mqttSettings(m: AgentConfig["mqtt"]): MqttSettings {
  return {
    url: m.url,
    clientId: m.clientId,
    username: m.username,
    password: m.password,
    passwordFile: m.passwordFile,
    tls: m.tls,
    keepaliveSec: m.keepaliveSec,
    connectTimeoutMs: m.connectTimeoutMs,
    reconnect: m.reconnect,
    batchMaxReadings: m.batch.maxReadings,
    batchDelayMs: m.batch.delayMs,
    inflightWindow: m.inflightWindow,
  };
}

export function birthTemplate(config: AgentConfig, startedAt: number, configVersion?: number): BirthTemplate {
  const probes = config.buses.flatMap((bus) => bus.probes.map((p) => ({ bus, p })));
  return {
    agentId: config.agent.id,
    siteId: config.agent.siteId,
    agentVersion: AGENT_VERSION,
    configHash: configHash(config),
    ...(configVersion === undefined ? {} : { configVersion }),
    startedAt,
    units: config.units.map((u) => ({
      unitId: u.id,
      kind: u.kind,
      ...(u.name === undefined ? {} : { name: u.name }),
      probeIds: probes.filter(({ p }) => p.unit === u.id).map(({ p }) => p.id),
    })),
    probes: probes.map(({ bus, p }) => ({
      probeId: p.id,
      unitId: p.unit,
      driver: bus.type,
      intervalMs: p.intervalMs,
      calibrationOffsetC: p.calibration?.offsetC ?? 0,
      calibrationDueAt: p.calibration?.dueDate ? Date.parse(`${p.calibration.dueDate}T00:00:00Z`) : null,
    })),
  };
}

export class Agent {
  private readonly deps: AgentDeps;
  private readonly clock: Clock;
  private readonly log: Logger;
  private outboxRef: Outbox | undefined;
  private publisherRef: Publisher | undefined;
  private alarm: LocalAlarm | undefined;
  private pending: NewReading[] = [];
  private flushQueued = false;
  private healthTimer: unknown;
  private statusTimer: unknown;
  private healthSignature = "";
  private startedAt = 0;
  private running = false;
  private timeKeeper: TimeKeeper | undefined;
  private holdTimer: unknown;
  /** The clock stayed untrusted longer than holdUnsyncedMs: flagged readings go out. */
  private holdExpired = false;

  constructor(deps: AgentDeps) {
    this.deps = deps;
    this.clock = deps.clock ?? systemClock;
    this.log = componentLogger(deps.log, deps.config, "agent");
  }

  get outbox(): Outbox {
    if (!this.outboxRef) throw new Error("agent not started");
    return this.outboxRef;
  }

  get publisher(): Publisher {
    if (!this.publisherRef) throw new Error("agent not started");
    return this.publisherRef;
  }

  async start(): Promise<void> {
    const { config, acquisition, log } = this.deps;
    this.startedAt = this.clock.now();
    const outbox = Outbox.open({
      path: config.outbox.path,
      agentId: config.agent.id,
      maxReadings: config.outbox.maxReadings,
      synchronous: config.outbox.synchronous,
      now: () => this.clock.now(),
    });
    this.outboxRef = outbox;
    if (outbox.skippedSeqs > 0) {
      this.log.warn(
        { skipped: outbox.skippedSeqs, nextSeq: outbox.nextSeq },
        "unclean stop across a reboot: sequence numbers resume after the durable reservation",
      );
    }
    const stats = outbox.stats();
    this.log.info(
      {
        path: config.outbox.path,
        depth: stats.depth,
        nextSeq: stats.nextSeq,
        maxReadings: config.outbox.maxReadings,
      },
      "outbox opened",
    );
    const m = config.mqtt;
    this.publisherRef = new Publisher({
      siteId: config.agent.siteId,
      agentId: config.agent.id,
      outbox,
      birth: birthTemplate(config, this.startedAt, this.deps.configVersion),
      desiredConfig: config.agent.remoteConfig.enabled,
      log: componentLogger(log, config, "publisher"),
      clock: this.clock,
      settings: mqttSettings(m),
    });
    this.deps.onPublisher?.(this.publisherRef);
    const limited = config.units.filter((u) => u.actionLimits !== undefined).map((u) => u.id);
    this.alarm = new LocalAlarm({
      units: config.units.map((u) => ({
        unitId: u.id,
        lowC: u.actionLimits?.lowC,
        highC: u.actionLimits?.highC,
        delayMs: u.alarmDelayMs,
      })),
      outputs: config.localAlarm.enabled
        ? config.localAlarm.outputs.map((o) => ({
            busId: o.busId,
            slaveId: o.slaveId,
            coil: o.coil,
            units: o.units ?? limited,
          }))
        : [],
      writeCoil: (busId, slaveId, coil, on) => acquisition.writeCoil(busId, slaveId, coil, on),
      log: componentLogger(log, config, "alarm"),
      clock: this.clock,
    });
    if (this.deps.alarmState) this.alarm.restore(this.deps.alarmState);
    const clockCfg = config.agent.clock;
    const publisher = this.publisherRef;
    this.timeKeeper = new TimeKeeper({
      ...(this.deps.time ? { source: this.deps.time } : {}),
      sync: this.deps.clockSync ?? (await syncSourceFor(clockCfg.sync)),
      clock: this.clock,
      log: componentLogger(log, config, "clock"),
      checkIntervalMs: clockCfg.checkIntervalMs,
      jumpThresholdMs: clockCfg.jumpThresholdMs,
      onTrusted: (offsetMs) => outbox.reanchor({ offsetMs, qualities: ["unsynchronised", "stepped"] }),
      onChange: () => {
        this.updateHold();
        this.publishHealth();
      },
    });
    await this.timeKeeper.start();
    this.updateHold();
    this.running = true;
    publisher.start();
    if (stats.gapDepth > 0) this.publisherRef.notify({ gaps: true });
    await acquisition.start((r) => this.onReading(r));
    this.scheduleHealth();
    this.scheduleStatus();
    this.writeStatus();
    this.log.info({ version: AGENT_VERSION }, "agent started");
  }

  private onReading(r: NewReading): void {
    if (!this.running) return;
    const stamp = this.timeKeeper?.stamp(r.observedAt);
    this.pending.push({
      probeId: r.probeId,
      unitId: r.unitId,
      observedAt: r.observedAt,
      tempC: r.tempC,
      quality: r.quality,
      ...(stamp ? { monoMs: stamp.monoMs } : {}),
      ...(stamp?.timeQuality ? { timeQuality: stamp.timeQuality } : {}),
    });
    this.alarm?.onReading(r);
    this.deps.onReading?.(r);
    if (!this.flushQueued) {
      this.flushQueued = true;
      // Readings of one poll cycle usually arrive in the same tick: one transaction for all.
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0 || !this.outboxRef) return;
    try {
      const { gaps, extendedGaps } = this.outboxRef.append(batch);
      for (const g of gaps) {
        this.log.warn(
          {
            gapId: g.gapId,
            fromSeq: g.fromSeq,
            toSeq: g.toSeq,
            droppedCount: g.droppedCount,
            unitIds: g.unitIds,
          },
          "outbox full: oldest readings evicted",
        );
      }
      // Every further poll cycle of the same outage extends the record: one warning per gap.
      for (const g of extendedGaps)
        this.log.debug(
          { gapId: g.gapId, toSeq: g.toSeq, droppedCount: g.droppedCount },
          "gap record extended",
        );
      this.publisherRef?.notify({ gaps: gaps.length + extendedGaps.length > 0 });
    } catch (err) {
      this.log.error({ err, lost: batch.length }, "readings could not be stored in the outbox");
    }
    const signature = this.deps.acquisition
      .health()
      .map((p) => `${p.probeId}:${p.consecutiveFailures > 0}:${p.calibrationOverdue}`)
      .join("|");
    if (signature !== this.healthSignature) {
      this.healthSignature = signature;
      this.publishHealth();
    }
  }

  /** The local alarm's state, for the agent that replaces this one. */
  alarmSnapshot(): LocalAlarmSnapshot | undefined {
    return this.alarm?.snapshot();
  }

  /** Current probe health with outbox depth, as published. */
  health(): ProbeHealth | undefined {
    const probes = this.deps.acquisition.health();
    if (probes.length === 0 || !this.outboxRef) return undefined;
    const s = this.outboxRef.stats();
    return {
      v: 1,
      agentId: this.deps.config.agent.id,
      at: this.clock.now(),
      probes,
      outbox: { depth: s.depth, oldestObservedAt: s.oldestObservedAt, evictedTotal: s.evictedTotal },
      ...(this.timeKeeper ? { clock: this.timeKeeper.report(this.outboxRef.untrustedPending()) } : {}),
    };
  }

  /**
   * Telemetry waits while the clock is not trusted, up to `agent.clock.holdUnsyncedMs` (a
   * Node timer: monotonic, immune to the wall clock's jumps), so readings can be re-anchored
   * before they leave; after that they go out flagged. A wall clock before 2000 holds them for
   * good: their times could not even be sent.
   */
  private updateHold(): void {
    const tk = this.timeKeeper;
    const publisher = this.publisherRef;
    if (!tk || !publisher) return;
    if (tk.trusted()) {
      if (this.holdTimer !== undefined) this.clock.clearTimeout(this.holdTimer);
      this.holdTimer = undefined;
      this.holdExpired = false;
      publisher.holdTelemetry(false);
      return;
    }
    const unset = this.clock.now() < 946_684_800_000;
    publisher.holdTelemetry(unset || !this.holdExpired);
    if (this.holdTimer === undefined && (unset || !this.holdExpired)) {
      this.holdTimer = this.clock.setTimeout(
        () => {
          this.holdTimer = undefined;
          if (!unset) this.holdExpired = true;
          this.updateHold();
        },
        unset ? 5000 : this.deps.config.agent.clock.holdUnsyncedMs,
      );
    }
  }

  private publishHealth(): void {
    const h = this.health();
    if (h) this.publisherRef?.publishHealth(h);
  }

  private scheduleHealth(): void {
    this.healthTimer = this.clock.setTimeout(() => {
      if (!this.running) return;
      this.publishHealth();
      this.scheduleHealth();
    }, this.deps.config.agent.healthIntervalMs);
  }

  private scheduleStatus(): void {
    this.statusTimer = this.clock.setTimeout(() => {
      if (!this.running) return;
      this.writeStatus();
      this.scheduleStatus();
    }, this.deps.config.agent.statusIntervalMs);
  }

  private writeStatus(): void {
    const p = this.publisherRef?.status();
    try {
      this.outboxRef?.writeStatus({
        pid: process.pid,
        startedAt: this.startedAt,
        connected: p?.connected ?? false,
        sessionId: p?.sessionId ?? null,
        gatewayListening: p?.gatewayListening ?? null,
        lastPublishAt: p?.lastPublishAt ?? null,
        probes: this.deps.acquisition.health(),
        alarms: this.alarm?.activeUnits() ?? [],
        clock:
          this.timeKeeper && this.outboxRef
            ? this.timeKeeper.report(this.outboxRef.untrustedPending())
            : null,
      });
    } catch (err) {
      this.log.warn({ err }, "status not written");
    }
  }

  /**
   * Orderly stop: acquisition, last readings stored, state offline (shutdown), outbox closed.
   * `reconfigure`: the same agent comes back at once with another configuration, so no offline
   * state is published (see Publisher.stop).
   */
  async stop(opts: { reconfigure?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    await this.deps.acquisition.stop();
    this.flush();
    this.running = false;
    if (this.healthTimer !== undefined) this.clock.clearTimeout(this.healthTimer);
    if (this.statusTimer !== undefined) this.clock.clearTimeout(this.statusTimer);
    if (this.holdTimer !== undefined) this.clock.clearTimeout(this.holdTimer);
    this.timeKeeper?.stop();
    this.alarm?.stop();
    this.writeStatus();
    await this.publisherRef?.stop(opts);
    this.outboxRef?.writeStatus({ pid: null, connected: false });
    this.outboxRef?.close();
    this.log.info({}, "agent stopped");
  }
}
