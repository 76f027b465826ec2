/**
 * Remote configuration: the supervisor owns the running Agent and replaces it when the
 * gateway pushes a configuration, on trial, rolling back by itself when the new configuration
 * cannot reach the broker or the probes.
 *
 *   config/desired ─▶ decode (same schema as the file) ─▶ local rules (rules.ts) ─┬─ refused: report rejected
 *                                                                                │
 *        trial: state saved ─▶ agent.stop(reconfigure) ─▶ new Agent(config).start()
 *               ├─ broker connected and every probe that answered before answered again ─▶ applied (last good)
 *               └─ graceMs passed first (or the agent could not start) ─▶ rolled back to the last good
 *   config/reported (retained) after every step: state, what runs (version, documentHash, configHash)
 *
 * No reading is lost in a switch: the old agent stops its acquisition and stores what it
 * polled before the outbox closes; the new one opens the same outbox (its path is local-only)
 * and numbering continues. Polling pauses for as long as the switch takes (a second or two).
 * The trial is persisted first: an agent that dies during a trial (a crash, a watchdog kill)
 * starts again on the last good configuration and reports the rollback.
 */
import {
  agentConfigSchema,
  type ConfigDesired,
  type ConfigReported,
  decodeMessage,
  isColdtraceError,
  type WireIssue,
} from "@coldtrace/protocol";
import type { Logger } from "pino";
import { type AcquisitionPort, Agent, type AgentDeps, componentLogger } from "../agent/agent.ts";
import { type Clock, systemClock } from "../clock.ts";
import { type AgentConfig, type ConfigIssue, configHash, parseConfig } from "../config/index.ts";
import type { NewReading } from "../outbox/index.ts";
import type { Publisher } from "../publisher/index.ts";
import { documentHash } from "./hash.ts";
import { checkDesired } from "./rules.ts";
import { loadRemoteState, type RemoteState, type Running, saveRemoteState, stateFile } from "./store.ts";

export interface SupervisorDeps {
  /** The configuration file (names it in messages). */
  file: string;
  fileConfig: AgentConfig;
  /** The file's document as parsed from YAML, for its documentHash. */
  fileDocument: unknown;
  makeAcquisition: (config: AgentConfig) => AcquisitionPort;
  /** The root logger. */
  log: Logger;
  clock?: Clock;
  /** Passed to every Agent (tests: time source, clock sync). */
  agentDeps?: Pick<AgentDeps, "time" | "clockSync">;
}

interface Trial {
  version: number;
  graceMs: number;
  /** Probes that answered under the previous configuration and are still configured. */
  required: Set<string>;
  answered: Set<string>;
  connected: boolean;
  timer: unknown;
}

const MAX_ISSUES = 200;

export class Supervisor {
  private readonly d: SupervisorDeps;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly statePath: string;
  private state: RemoteState = { lastHandledVersion: 0 };
  private fileHash = "";
  private agentRef: Agent | undefined;
  private running!: Running & { config: AgentConfig };
  private report!: ConfigReported;
  private trial: Trial | undefined;
  private pendingDesired: { topic: string; payload: Buffer } | undefined;
  /** Probes whose last reading under the running configuration was an answer. */
  private readonly answering = new Map<string, boolean>();
  private serial: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(deps: SupervisorDeps) {
    this.d = deps;
    this.clock = deps.clock ?? systemClock;
    this.log = componentLogger(deps.log, deps.fileConfig, "remote-config");
    this.statePath = stateFile(deps.fileConfig.agent.dataDir);
  }

  get agent(): Agent {
    if (!this.agentRef) throw new Error("supervisor not started");
    return this.agentRef;
  }

  /** The last configuration report (as published). */
  get lastReport(): ConfigReported {
    return this.report;
  }

  async start(): Promise<void> {
    const { fileConfig } = this.d;
    this.fileHash = documentHash(agentConfigSchema.parse(this.d.fileDocument));
    this.state = loadRemoteState(this.statePath);
    const file = this.fileRunning();
    let target: Running = file;
    let report: Omit<ConfigReported, "v" | "agentId" | "running" | "at"> = { state: "applied" };
    if (!fileConfig.agent.remoteConfig.enabled) {
      target = file;
    } else if (this.state.trial) {
      // Died during a trial: whatever happened, the last good configuration runs.
      const t = this.state.trial;
      target = this.state.lastGood ?? file;
      report = {
        state: "rolled_back",
        desiredVersion: t.version ?? undefined,
        reason: {
          code: "CT_CONFIG_ROLLBACK",
          message: `the agent restarted while configuration version ${t.version} was on trial; back to the last good configuration`,
        },
      };
      this.log.warn({ version: t.version }, "restarted during a configuration trial: rolled back");
      this.state = {
        ...this.state,
        trial: undefined,
        current: target.source === "remote" ? target : undefined,
      };
      this.save();
    } else if (this.state.current && this.state.fileHash === this.fileHash) {
      target = this.state.current;
    } else if (this.state.current) {
      // Somebody edited the box's file since the push: the person on site wins until the next push.
      this.log.warn(
        { version: this.state.current.version, file: this.d.file },
        "the configuration file changed since the pushed configuration was applied: running the file",
      );
      this.state = { ...this.state, current: undefined, lastGood: undefined };
      this.save();
    }
    try {
      await this.launch(target, report);
    } catch (err) {
      if (target.source === "file") throw err;
      // A stored pushed configuration that no longer starts (it was written by an older agent
      // version, say): the box's own file, never a boot loop.
      this.log.error(
        { err, version: target.version },
        "pushed configuration does not start: running the file",
      );
      this.state = { ...this.state, current: undefined, lastGood: undefined, trial: undefined };
      this.save();
      await this.agentRef?.stop().catch(() => undefined);
      await this.launch(file, {
        state: "rolled_back",
        ...(target.version === null ? {} : { desiredVersion: target.version }),
        reason: {
          code: "CT_CONFIG_ROLLBACK",
          message:
            `configuration version ${target.version} did not start (${(err as Error).message}); running the box's file`.slice(
              0,
              2000,
            ),
        },
      });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.serial;
    if (this.trial) this.clock.clearTimeout(this.trial.timer);
    this.trial = undefined;
    await this.agentRef?.stop();
  }

  private fileRunning(): Running {
    return { source: "file", version: null, documentHash: this.fileHash };
  }

  private configOf(r: Running): AgentConfig {
    return r.source === "file"
      ? this.d.fileConfig
      : parseConfig(r.document, `configuration version ${r.version}`);
  }

  private save(): void {
    saveRemoteState(this.statePath, this.state);
  }

  private enqueue(fn: () => Promise<void>): void {
    this.serial = this.serial
      .then(fn)
      .catch((err: unknown) => this.log.error({ err }, "remote configuration step failed"));
  }

  /** Starts an Agent for `target` and publishes the report. */
  private async launch(
    target: Running,
    report: Omit<ConfigReported, "v" | "agentId" | "running" | "at">,
  ): Promise<void> {
    const config = this.configOf(target);
    // A reconfiguration must neither silence a tripped local alarm nor restart its delay.
    const alarmState = this.agentRef?.alarmSnapshot();
    this.running = { ...target, config };
    this.answering.clear();
    this.setReport(report);
    const agent = new Agent({
      ...this.d.agentDeps,
      config,
      acquisition: this.d.makeAcquisition(config),
      log: this.d.log,
      clock: this.clock,
      ...(target.version === null ? {} : { configVersion: target.version }),
      onReading: (r) => this.onReading(r),
      onPublisher: (p) => this.attach(p),
      ...(alarmState ? { alarmState } : {}),
    });
    this.agentRef = agent;
    await agent.start();
  }

  private attach(publisher: Publisher): void {
    publisher.publishConfigReport(this.report);
    publisher.on("configDesired", (topic, payload) => this.enqueue(() => this.onDesired(topic, payload)));
    publisher.on("connected", () => {
      if (!this.trial) return;
      this.trial.connected = true;
      this.checkTrial();
    });
  }

  private setReport(r: Omit<ConfigReported, "v" | "agentId" | "running" | "at">): void {
    this.report = {
      v: 1,
      agentId: this.d.fileConfig.agent.id,
      ...r,
      running: {
        source: this.running.source,
        version: this.running.version,
        documentHash: this.running.documentHash,
        configHash: configHash(this.running.config),
      },
      at: this.clock.now(),
    };
    this.agentRef?.publisher.publishConfigReport(this.report);
  }

  private onReading(r: NewReading): void {
    const answered = r.quality !== "comm_error";
    this.answering.set(r.probeId, answered);
    if (answered && this.trial?.required.has(r.probeId)) {
      this.trial.answered.add(r.probeId);
      this.checkTrial();
    }
  }

  private async onDesired(topic: string, payload: Buffer): Promise<void> {
    if (this.stopped) return;
    if (this.trial) {
      // One trial at a time: the newest desired message waits for this one to end.
      this.pendingDesired = { topic, payload };
      return;
    }
    let desired: ConfigDesired;
    try {
      desired = decodeMessage(topic, payload).payload as ConfigDesired;
    } catch (err) {
      const version = versionOf(payload);
      if (version === undefined || version <= this.state.lastHandledVersion) {
        this.log.warn({ topic, err }, "desired configuration unreadable");
        return;
      }
      const issues = isColdtraceError(err) ? ((err.context.issues as WireIssue[] | undefined) ?? []) : [];
      return this.reject(
        version,
        issues.length > 0 ? issues : [{ path: "", message: (err as Error).message }],
      );
    }
    if (desired.version <= this.state.lastHandledVersion) {
      // The retained message again (reconnect): nothing to do. A different document under an
      // old version number (a restored gateway database?) is never applied: say so.
      const fresh =
        desired.documentHash !== this.running.documentHash && desired.version !== this.running.version;
      this.log[fresh ? "warn" : "debug"](
        { version: desired.version, handled: this.state.lastHandledVersion },
        fresh
          ? "desired configuration ignored: its version was handled already; send it with a higher version"
          : "desired configuration already handled",
      );
      return;
    }
    const { config, issues } = await checkDesired(desired, this.d.fileConfig);
    if (!config) return this.reject(desired.version, issues);
    const target: Running = {
      source: "remote",
      version: desired.version,
      documentHash: desired.documentHash,
      document: desired.config,
    };
    if (desired.documentHash === this.running.documentHash) {
      // The same document under a new version number: nothing to switch, nothing to try.
      this.state = {
        ...this.state,
        lastHandledVersion: desired.version,
        current: target,
        lastGood: target,
        fileHash: this.fileHash,
      };
      this.save();
      this.running = { ...target, config: this.running.config };
      this.setReport({ state: "applied", desiredVersion: desired.version });
      this.log.info({ version: desired.version }, "desired configuration already running");
      return;
    }
    await this.beginTrial(target, desired.graceMs ?? this.d.fileConfig.agent.remoteConfig.graceMs, config);
  }

  private async reject(version: number, issues: readonly ConfigIssue[]): Promise<void> {
    this.state = { ...this.state, lastHandledVersion: version };
    this.save();
    const list = issues.slice(0, MAX_ISSUES).map((i) => ({
      path: i.path.slice(0, 500),
      message: i.message.slice(0, 1000),
      ...(i.line === undefined ? {} : { line: i.line }),
    }));
    this.log.warn({ version, issues: list }, "desired configuration refused");
    this.setReport({
      state: "rejected",
      desiredVersion: version,
      reason: {
        code: "CT_CONFIG_REJECTED",
        message:
          `configuration version ${version} refused: ${issues.length} problem${issues.length === 1 ? "" : "s"} (first: ${
            issues[0] ? `${issues[0].path || "(top level)"}: ${issues[0].message}` : "unknown"
          })`.slice(0, 2000),
      },
      issues: list,
    });
  }

  private async beginTrial(target: Running, graceMs: number, config: AgentConfig): Promise<void> {
    const version = target.version ?? 0;
    const previous: Running = { ...this.running };
    delete (previous as { config?: unknown }).config;
    const stillThere = new Set(config.buses.flatMap((b) => b.probes.map((p) => p.id)));
    const required = new Set(
      [...this.answering].filter(([id, ok]) => ok && stillThere.has(id)).map(([id]) => id),
    );
    this.state = {
      ...this.state,
      lastHandledVersion: version,
      lastGood: previous,
      trial: { ...target, startedAt: this.clock.now() },
    };
    this.save();
    this.log.info({ version, graceMs, required: [...required] }, "applying configuration version on trial");
    await this.agent.stop({ reconfigure: true });
    this.trial = {
      version,
      graceMs,
      required,
      answered: new Set(),
      connected: false,
      timer: this.clock.setTimeout(() => this.enqueue(() => this.graceOver(version)), graceMs),
    };
    try {
      await this.launch(target, { state: "trial", desiredVersion: version });
    } catch (err) {
      this.log.error({ err, version }, "configuration could not start");
      return this.rollback(`the agent could not start with it: ${(err as Error).message}`);
    }
    this.checkTrial();
  }

  private checkTrial(): void {
    const t = this.trial;
    if (!t?.connected) return;
    for (const id of t.required) if (!t.answered.has(id)) return;
    this.clock.clearTimeout(t.timer);
    this.trial = undefined;
    const current: Running = { ...this.running };
    delete (current as { config?: unknown }).config;
    this.state = { ...this.state, current, lastGood: current, trial: undefined, fileHash: this.fileHash };
    this.save();
    this.setReport({ state: "applied", desiredVersion: t.version });
    this.log.info({ version: t.version }, "configuration version applied: broker and probes reached");
    this.afterTrial();
  }

  private async graceOver(version: number): Promise<void> {
    const t = this.trial;
    if (!t || t.version !== version) return;
    const seconds = Math.round(t.graceMs / 1000);
    if (!t.connected) {
      const status = this.agentRef?.publisher.status();
      const why = status?.lastError ? ` (${status.lastError})` : "";
      return this.rollback(`broker ${this.running.config.mqtt.url} not reached within ${seconds} s${why}`);
    }
    const missing = [...t.required].filter((id) => !t.answered.has(id));
    return this.rollback(
      `probe${missing.length === 1 ? "" : "s"} ${missing.join(", ")} answered before and did not answer within ${seconds} s`,
    );
  }

  private async rollback(message: string): Promise<void> {
    const t = this.trial;
    if (t) this.clock.clearTimeout(t.timer);
    this.trial = undefined;
    const version = t?.version ?? this.running.version ?? 0;
    const target = this.state.lastGood ?? this.fileRunning();
    this.state = {
      ...this.state,
      trial: undefined,
      current: target.source === "remote" ? target : undefined,
    };
    this.save();
    this.log.error({ version, reason: message }, "configuration rolled back");
    await this.agentRef?.stop({ reconfigure: true });
    const report = {
      state: "rolled_back" as const,
      desiredVersion: version,
      reason: {
        code: "CT_CONFIG_ROLLBACK",
        message: `configuration version ${version} rolled back: ${message}`.slice(0, 2000),
      },
    };
    try {
      await this.launch(target, report);
    } catch (err) {
      // The last good configuration does not start either (a disk problem?): the box's own file.
      this.log.error({ err }, "last good configuration could not start: running the file");
      this.state = { ...this.state, current: undefined, lastGood: undefined };
      this.save();
      await this.launch(this.fileRunning(), report);
    }
    this.afterTrial();
  }

  private afterTrial(): void {
    const next = this.pendingDesired;
    this.pendingDesired = undefined;
    if (next) this.enqueue(() => this.onDesired(next.topic, next.payload));
  }
}

/** The `version` of a desired message that failed validation, if it has a usable one. */
function versionOf(payload: Buffer): number | undefined {
  try {
    const v = (JSON.parse(payload.toString("utf8")) as { version?: unknown }).version;
    return typeof v === "number" && Number.isInteger(v) && v >= 1 ? v : undefined;
  } catch {
    return undefined;
  }
}
