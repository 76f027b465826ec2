/**
 * The agent's MQTT session: connects with a last will, announces itself (birth, state),
 * drains the outbox at QoS 1 and deletes rows only on PUBACK (docs/protocol.md).
 *
 *   connect (new sessionId, will = state offline) ─▶ birth (retained) ─▶ state online (retained)
 *        │                                            ─▶ subscribe ct/v1/_gateway/+/state
 *        ▼
 *   drain loop, at most `inflightWindow` telemetry/gap messages unacknowledged:
 *     live   : seq ≥ liveFromSeq (readings written during this session), backfill=false,
 *              after a short batching delay so one poll cycle becomes one message per unit
 *     replay : seq < liveFromSeq (left over from before this connect), backfill=true, oldest first
 *     gaps   : every pending gap record, once the outbox is no longer full
 *   PUBACK ─▶ outbox.ack(seqs) / outbox.ackGap(id)
 *        │
 *   close ─▶ forget everything in flight (the rows are still in the outbox) ─▶ reconnect after
 *            an exponential backoff with full jitter (capped at 5 s by default) with a brand-new
 *            client and sessionId
 *
 * A new mqtt.js client per connection (reconnectPeriod 0) keeps mqtt.js's own in-memory
 * resend queue out of the way: the outbox is the only store, so a replay after reconnect is
 * exactly "what the outbox still holds". QoS 1 is at-least-once; the gateway dedupes by
 * (agentId, seq).
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import {
  type Birth,
  ColdtraceError,
  type ConfigReported,
  decodeMessage,
  encodePayload,
  formatTopic,
  type ProbeHealth,
  topicFilters,
} from "@coldtrace/protocol";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { Logger } from "pino";
import { type Clock, systemClock } from "../clock.ts";
import type { Outbox, StoredReading } from "../outbox/index.ts";

/** Socket errors that only mean the connection is gone (the reconnect logic takes over). */
const CONNECTION_LOST = new Set(["ERR_STREAM_WRITE_AFTER_END", "EPIPE", "ECONNRESET"]);
export interface MqttSettings {
  url: string;
  clientId?: string;
  username?: string;
  password?: string;
  /** File holding the password (first line); read at every connect so a rotated secret is picked up. */
  passwordFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string; rejectUnauthorized?: boolean };
  keepaliveSec: number;
  connectTimeoutMs: number;
  reconnect: { minMs: number; maxMs: number };
  /** Most readings in one telemetry message (contract max 2000). */
  batchMaxReadings: number;
  /** Wait this long after a live reading before sending, to batch one poll cycle together. */
  batchDelayMs: number;
  /** Telemetry and gap messages unacknowledged at once. */
  inflightWindow: number;
}

/**
 * The broker URL as mqtt.js connection options, parsed with the WHATWG URL API. Handing
 * mqtt.js the URL string would make it call the deprecated `url.parse()` (Node DEP0169);
 * `host`, `port` and `protocol` are documented connect options of MQTT.js.
 */
export function brokerAddress(url: string): Pick<IClientOptions, "protocol" | "host" | "port"> {
  const u = new URL(url);
  const scheme = u.protocol.replace(/:$/, "");
  const secure = scheme === "mqtts" || scheme === "tls" || scheme === "ssl";
  // mqtt.js names TLS over TCP "mqtts" or "ssl"; the config also accepts "tls" (same thing).
  const protocol = (scheme === "tls" ? "ssl" : scheme) as NonNullable<IClientOptions["protocol"]>;
  return {
    protocol,
    // An IPv6 literal comes bracketed from URL; net.connect wants it bare.
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: u.port === "" ? (secure ? 8883 : 1883) : Number(u.port),
  };
}

/** What the birth needs besides the per-connect fields. */
export type BirthTemplate = Omit<Birth, "v" | "sessionId" | "nextSeq">;

export interface PublisherDeps {
  siteId: string;
  agentId: string;
  settings: MqttSettings;
  outbox: Outbox;
  birth: BirthTemplate;
  log: Logger;
  clock?: Clock;
  /** Source of the reconnect jitter, in [0, 1) (tests pass a fixed sequence). */
  random?: () => number;
  /** Subscribe to the agent's desired-configuration topic (remote configuration). */
  desiredConfig?: boolean;
}

export interface PublisherStatus {
  connected: boolean;
  sessionId: string | null;
  /** Whether some gateway said `online` on its state topic; null before any gateway state arrived. */
  gatewayListening: boolean | null;
  /** When the broker last acknowledged telemetry (ms), or null. */
  lastPublishAt: number | null;
  inflight: number;
  /** Why the last connection attempt or connection failed, or null. */
  lastError: string | null;
}

interface Session {
  client: MqttClient;
  id: string;
  connectedAt: number;
  ready: boolean;
  closed: boolean;
  liveFromSeq: number;
  liveCursor: number;
  replayCursor: number;
  replayDone: boolean;
  inflight: number;
  gapsSent: Set<string>;
  gapsDirty: boolean;
}

const MAX_FETCH = 5000;
/** 2000-01-01: the contract's earliest event time (protocol epochMs). */
const EARLIEST_VALID_TIME = 946_684_800_000;

/** A session id: a new one per connect (Sparkplug bdSeq). */
function newSessionId(): string {
  return `s-${randomBytes(6).toString("hex")}`;
}

export interface PublisherEvents {
  connected: [sessionId: string];
  /** A message on the agent's desired-configuration topic, undecoded (the supervisor judges it). */
  configDesired: [topic: string, payload: Buffer];
  disconnected: [];
  gateway: [listening: boolean];
  acked: [count: number];
}

export class Publisher extends EventEmitter<PublisherEvents> {
  private readonly deps: PublisherDeps;
  private readonly clock: Clock;
  private readonly log: Logger;
  private session: Session | undefined;
  private attempt = 0;
  private reconnectTimer: unknown;
  private batchTimer: unknown;
  private drainQueued = false;
  private stopped = true;
  private health: ProbeHealth | undefined;
  private readonly gateways = new Map<string, boolean>();
  private lastAckAt: number | null = null;
  private waitingForClock = false;
  private lastError: string | null = null;
  private configReport: ConfigReported | undefined;
  /** Telemetry waits in the outbox (the clock is not trusted yet: readings may be re-anchored). */
  private telemetryHeld = false;

  constructor(deps: PublisherDeps) {
    super();
    this.deps = deps;
    this.clock = deps.clock ?? systemClock;
    this.log = deps.log;
  }

  private topic(
    kind: "birth" | "agentState" | "probeHealth" | "gap" | "configDesired" | "configReported",
  ): string {
    return formatTopic({ kind, siteId: this.deps.siteId, agentId: this.deps.agentId });
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  status(): PublisherStatus {
    const listening = [...this.gateways.values()];
    return {
      connected: this.session?.ready === true,
      sessionId: this.session?.ready ? this.session.id : null,
      gatewayListening: listening.length === 0 ? null : listening.some(Boolean),
      lastPublishAt: this.lastAckAt,
      inflight: this.session?.inflight ?? 0,
      lastError: this.lastError,
    };
  }

  private clientOptions(sessionId: string, connectedAt: number): IClientOptions {
    const s = this.deps.settings;
    const opts: IClientOptions = {
      ...brokerAddress(s.url),
      clientId: s.clientId ?? `ct-${this.deps.agentId}`,
      clean: true,
      keepalive: s.keepaliveSec,
      connectTimeout: s.connectTimeoutMs,
      reconnectPeriod: 0,
      protocolVersion: 4,
      // MQTT 3.1.1 §3.1.2.5: the broker publishes the will when the connection drops without DISCONNECT.
      will: {
        topic: this.topic("agentState"),
        payload: encodePayload("agentState", {
          v: 1,
          agentId: this.deps.agentId,
          state: "offline",
          sessionId,
          at: connectedAt,
        }),
        qos: 1,
        retain: true,
      },
    };
    try {
      if (s.username !== undefined) opts.username = s.username;
      if (s.passwordFile !== undefined)
        opts.password = readFileSync(s.passwordFile, "utf8").split("\n")[0]?.trim();
      else if (s.password !== undefined) opts.password = s.password;
      if (s.tls) {
        if (s.tls.caFile) opts.ca = readFileSync(s.tls.caFile);
        if (s.tls.certFile) opts.cert = readFileSync(s.tls.certFile);
        if (s.tls.keyFile) opts.key = readFileSync(s.tls.keyFile);
        opts.rejectUnauthorized = s.tls.rejectUnauthorized ?? true;
      }
    } catch (err) {
      throw new ColdtraceError(
        "CT_CFG_UNREADABLE",
        `mqtt credentials: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
    return opts;
  }

  private connect(): void {
    if (this.stopped) return;
    const sessionId = newSessionId();
    const connectedAt = this.clock.now();
    if (connectedAt < EARLIEST_VALID_TIME) {
      // A box that booted at the epoch: every payload's time would be invalid. Wait for the clock.
      if (!this.waitingForClock)
        this.log.warn({ wallClock: connectedAt }, "wall clock before 2000: not connecting until it is set");
      this.waitingForClock = true;
      this.scheduleReconnect();
      return;
    }
    this.waitingForClock = false;
    let options: IClientOptions;
    try {
      options = this.clientOptions(sessionId, connectedAt);
    } catch (err) {
      this.log.error({ err }, "mqtt credentials unreadable");
      this.scheduleReconnect();
      return;
    }
    this.log.debug({ url: this.deps.settings.url, sessionId }, "mqtt connecting");
    // Options only, no URL string: mqtt.js parses a URL with the legacy url.parse() (DEP0169).
    const client = mqtt.connect(options);
    const session: Session = {
      client,
      id: sessionId,
      connectedAt,
      ready: false,
      closed: false,
      liveFromSeq: 0,
      liveCursor: 0,
      replayCursor: 0,
      replayDone: false,
      inflight: 0,
      gapsSent: new Set(),
      gapsDirty: true,
    };
    this.session = session;
    client.on("connect", () => this.onConnect(session));
    client.on("message", (topic, payload) => this.onMessage(topic, payload));
    client.on("error", (err) => {
      this.lastError = err.message;
      // The broker went away mid-write: the close that follows is logged and reconnects.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== undefined && CONNECTION_LOST.has(code))
        this.log.debug({ code, sessionId }, "mqtt connection lost while writing");
      else this.log.warn({ err, sessionId }, "mqtt error");
    });
    client.on("close", () => this.onClose(session));
  }

  private onConnect(session: Session): void {
    if (session.closed) return;
    const { client, id } = session;
    this.attempt = 0;
    session.liveFromSeq = this.deps.outbox.nextSeq;
    session.liveCursor = session.liveFromSeq - 1;
    const template = this.deps.birth;
    // Started before the clock was set: the start time re-anchored from the process's uptime.
    const startedAt =
      template.startedAt >= EARLIEST_VALID_TIME
        ? template.startedAt
        : Math.round(session.connectedAt - process.uptime() * 1000);
    const birth: Birth = { v: 1, ...template, startedAt, sessionId: id, nextSeq: session.liveFromSeq };
    // Same socket, same order: the birth reaches the broker before any telemetry of the session.
    client.publish(this.topic("birth"), encodePayload("birth", birth), { qos: 1, retain: true });
    client.publish(
      this.topic("agentState"),
      encodePayload("agentState", {
        v: 1,
        agentId: this.deps.agentId,
        state: "online",
        sessionId: id,
        at: session.connectedAt,
      }),
      { qos: 1, retain: true },
    );
    client.subscribe(topicFilters.gatewayState(), { qos: 1 });
    if (this.deps.desiredConfig) client.subscribe(this.topic("configDesired"), { qos: 1 });
    session.ready = true;
    this.lastError = null;
    const depth = this.deps.outbox.stats().depth;
    this.log.info({ sessionId: id, backlog: depth }, "mqtt connected");
    if (this.health) this.sendHealth(session, this.health);
    if (this.configReport) this.sendConfigReport(session, this.configReport);
    this.emit("connected", id);
    this.drain();
  }

  private onClose(session: Session): void {
    if (session.closed) return;
    session.closed = true;
    const wasReady = session.ready;
    session.ready = false;
    session.client.removeAllListeners("close");
    session.client.on("error", () => {});
    session.client.end(true);
    if (wasReady) {
      this.log.warn({ sessionId: session.id, inflight: session.inflight }, "mqtt connection lost");
      this.emit("disconnected");
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const { minMs, maxMs } = this.deps.settings.reconnect;
    const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(this.attempt, 30));
    // "Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): anywhere up to the
    // ceiling, so agents that lost the same broker at the same instant do not come back in step.
    // With the 5 s cap no agent waits more than 5 s after the broker is back (bench:reconnect).
    const delayMs = Math.round((this.deps.random ?? Math.random)() * ceiling);
    this.attempt += 1;
    this.log.debug({ delayMs, attempt: this.attempt }, "mqtt reconnect scheduled");
    this.reconnectTimer = this.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, delayMs);
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (this.deps.desiredConfig && topic === this.topic("configDesired")) {
      // An empty retained message clears the desired configuration: nothing to do.
      if (payload.length > 0) this.emit("configDesired", topic, payload);
      return;
    }
    let gatewayId: string;
    let online: boolean;
    try {
      const msg = decodeMessage(topic, payload);
      if (msg.kind !== "gatewayState") return;
      gatewayId = msg.payload.gatewayId;
      online = msg.payload.state === "online";
    } catch (err) {
      this.log.warn({ topic, err }, "gateway state rejected");
      return;
    }
    const before = this.status().gatewayListening;
    this.gateways.set(gatewayId, online);
    const after = this.status().gatewayListening === true;
    if (before !== after) {
      if (after) this.log.info({ gatewayId }, "gateway listening");
      else this.log.warn({ gatewayId }, "no gateway listening; readings stay in the outbox until it is");
      this.emit("gateway", after);
    }
  }

  /** New readings or gap records are in the outbox. Live readings wait `batchDelayMs` to batch up. */
  notify(opts: { gaps?: boolean } = {}): void {
    if (opts.gaps && this.session) this.session.gapsDirty = true;
    if (this.batchTimer !== undefined) return;
    this.batchTimer = this.clock.setTimeout(() => {
      this.batchTimer = undefined;
      this.drain();
    }, this.deps.settings.batchDelayMs);
  }

  /**
   * Holds telemetry in the outbox (gap records, health and state still go) while the agent's
   * clock is not trusted, so readings can be re-anchored before they are sent; releasing
   * sends what waited.
   */
  holdTelemetry(held: boolean): void {
    if (this.telemetryHeld === held) return;
    this.telemetryHeld = held;
    this.log.info({ held }, held ? "telemetry held until the clock is trusted" : "telemetry released");
    if (!held) this.queueDrain();
  }

  /** Publish probe health (retained); remembered and re-sent on every connect. */
  publishHealth(health: ProbeHealth): void {
    this.health = health;
    const s = this.session;
    if (s?.ready) this.sendHealth(s, health);
  }

  /** Publish the remote-configuration report (retained); remembered and re-sent on every connect. */
  publishConfigReport(report: ConfigReported): void {
    this.configReport = report;
    const s = this.session;
    if (s?.ready) this.sendConfigReport(s, report);
  }

  private sendConfigReport(session: Session, report: ConfigReported): void {
    this.sendRetained(session, "configReported", report, "configuration report rejected");
  }

  private sendHealth(session: Session, health: ProbeHealth): void {
    this.sendRetained(session, "probeHealth", health, "probe health rejected");
  }

  /** A retained state message of the agent, validated; a payload the contract refuses is logged, not sent. */
  private sendRetained<K extends "probeHealth" | "configReported">(
    session: Session,
    kind: K,
    payload: K extends "probeHealth" ? ProbeHealth : ConfigReported,
    rejected: string,
  ): void {
    try {
      session.client.publish(this.topic(kind), encodePayload(kind, payload as never), {
        qos: 1,
        retain: true,
      });
    } catch (err) {
      this.log.warn({ err }, rejected);
    }
  }

  private queueDrain(): void {
    if (this.drainQueued) return;
    this.drainQueued = true;
    setImmediate(() => {
      this.drainQueued = false;
      this.drain();
    });
  }

  /**
   * Fill the in-flight window: gap records (once the outbox has room again), live readings,
   * then the replay backlog.
   *
   * A gap record waits while the outbox is still full: right after a reconnect the next poll
   * cycles may evict again, and those evictions extend the record as long as it is unsent, so
   * one outage stays one record. It goes out as soon as the replay has made room (below 90 % of
   * the bound) or is complete; by then the gateway also has every evicted reading that had
   * reached it before, which is what it checks a gap record against.
   */
  private drain(): void {
    const s = this.session;
    if (!s?.ready || s.closed) return;
    const { outbox } = this.deps;
    const window = this.deps.settings.inflightWindow;
    const maxBatch = this.deps.settings.batchMaxReadings;
    if (s.gapsDirty && (s.replayDone || outbox.depth < outbox.maxReadings * 0.9)) {
      s.gapsDirty = false;
      for (const gap of outbox.pendingGaps()) {
        if (s.gapsSent.has(gap.gapId)) continue;
        s.gapsSent.add(gap.gapId);
        // From here on the record is what the gateway may have: later evictions start a new one.
        outbox.sealGap(gap.gapId);
        let payload: Buffer;
        try {
          payload = encodePayload("gap", gap);
        } catch (err) {
          // Written while the wall clock was before 2000: not sendable as it is; kept.
          this.log.warn({ err, gapId: gap.gapId }, "gap record not sendable");
          continue;
        }
        s.inflight += 1;
        s.client.publish(this.topic("gap"), payload, { qos: 1 }, (err) => {
          if (s.closed) return;
          s.inflight -= 1;
          if (err) {
            // Not acknowledged: offer it again on the next drain.
            s.gapsSent.delete(gap.gapId);
            s.gapsDirty = true;
            return;
          }
          outbox.ackGap(gap.gapId);
          this.queueDrain();
        });
      }
    }
    while (s.inflight < window && !this.telemetryHeld) {
      const limit = Math.min(MAX_FETCH, maxBatch * (window - s.inflight));
      let rows = outbox.pendingReadings(s.liveCursor, limit);
      let backfill = false;
      if (rows.length > 0) {
        s.liveCursor = rows[rows.length - 1]?.seq ?? s.liveCursor;
      } else if (!s.replayDone) {
        rows = outbox.pendingReadings(s.replayCursor, limit, s.liveFromSeq);
        backfill = true;
        if (rows.length === 0) {
          s.replayDone = true;
          this.log.info({ sessionId: s.id }, "outbox replay complete");
          break;
        }
        s.replayCursor = rows[rows.length - 1]?.seq ?? s.replayCursor;
      } else {
        break;
      }
      this.publishRows(s, rows, backfill, maxBatch);
    }
  }

  private publishRows(s: Session, rows: StoredReading[], backfill: boolean, maxBatch: number): void {
    const byUnit = new Map<string, StoredReading[]>();
    for (const r of rows) {
      // Taken at a wall time before 2000 in an earlier boot: never re-anchored, not sendable.
      if (r.observedAt < EARLIEST_VALID_TIME) continue;
      const list = byUnit.get(r.unitId);
      if (list) list.push(r);
      else byUnit.set(r.unitId, [r]);
    }
    const sentAt = this.clock.now();
    for (const [unitId, list] of byUnit) {
      const topic = formatTopic({
        kind: "telemetry",
        siteId: this.deps.siteId,
        agentId: this.deps.agentId,
        unitId,
      });
      for (let i = 0; i < list.length; i += maxBatch) {
        const chunk = list.slice(i, i + maxBatch);
        // The outbox stores contract-valid readings (outbox.ts contractReading) and ids come
        // from the validated config, so the replay path serialises without re-validating.
        const readings = chunk.map((r) =>
          r.timeQuality === null
            ? {
                seq: r.seq,
                probeId: r.probeId,
                observedAt: r.observedAt,
                tempC: r.tempC,
                quality: r.quality,
                backfill,
              }
            : {
                seq: r.seq,
                probeId: r.probeId,
                observedAt: r.observedAt,
                tempC: r.tempC,
                quality: r.quality,
                backfill,
                timeQuality: r.timeQuality,
              },
        );
        const payload = Buffer.from(
          JSON.stringify({ v: 1, agentId: this.deps.agentId, unitId, sessionId: s.id, sentAt, readings }),
          "utf8",
        );
        s.inflight += 1;
        s.client.publish(topic, payload, { qos: 1 }, (err) => {
          if (s.closed) return;
          s.inflight -= 1;
          if (err) return;
          this.deps.outbox.ack(chunk.map((r) => r.seq));
          this.lastAckAt = this.clock.now();
          this.emit("acked", chunk.length);
          this.queueDrain();
        });
      }
    }
  }

  private settle(s: Session, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const deadline = Date.now() + timeoutMs;
      const check = () => {
        if (s.inflight === 0 || s.closed || Date.now() >= deadline) resolve();
        else setTimeout(check, 10).unref();
      };
      check();
    });
  }

  /**
   * Orderly stop: state offline (reason shutdown), then DISCONNECT, so the will is not sent.
   * For a reconfiguration (`reconfigure`) the offline state is not published: the agent is
   * back at once with a new session, whose birth and `online` state replace the retained ones.
   */
  async stop(opts: { reconfigure?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.reconnectTimer !== undefined) this.clock.clearTimeout(this.reconnectTimer);
    if (this.batchTimer !== undefined) this.clock.clearTimeout(this.batchTimer);
    this.reconnectTimer = undefined;
    this.batchTimer = undefined;
    const s = this.session;
    if (!s) return;
    this.session = undefined;
    const { client } = s;
    client.removeAllListeners("close");
    if (s.ready && !s.closed) {
      // Send what is waiting and give the acks a moment; whatever is not acked stays in the outbox.
      this.session = s;
      this.drain();
      await this.settle(s, 2000);
      this.session = undefined;
      if (opts.reconfigure) {
        s.closed = true;
        await client.endAsync(false).catch(() => undefined);
        this.log.info({ sessionId: s.id }, "mqtt disconnected for a reconfiguration");
        return;
      }
      const payload = encodePayload("agentState", {
        v: 1,
        agentId: this.deps.agentId,
        state: "offline",
        sessionId: s.id,
        at: this.clock.now(),
        reason: "shutdown",
      });
      await Promise.race([
        client
          .publishAsync(this.topic("agentState"), payload, { qos: 1, retain: true })
          .catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, 2000).unref()),
      ]);
      s.closed = true;
      await client.endAsync(false).catch(() => undefined);
      this.log.info({ sessionId: s.id }, "mqtt disconnected");
    } else {
      s.closed = true;
      client.on("error", () => {});
      await client.endAsync(true).catch(() => undefined);
    }
  }
}
