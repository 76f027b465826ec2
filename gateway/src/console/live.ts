/**
 * The console's live stream: a fan-out of what changed (readings stored, unit tiles whose state
 * moved, alarm / excursion / lot / eligibility / agent events) to every browser connected to
 * GET /api/v1/console/live, each with its own filter (a site, a unit).
 *
 *   readings stored ─▶ batch for flushMs ─┐
 *   contract events, unit tiles ──────────┴▶ event (id `${boot}-${n}`) ─▶ ring of replayEvents
 *                                                                      └▶ each subscriber (filtered)
 *
 * A browser that reconnects sends Last-Event-ID (the EventSource standard): what it missed is
 * replayed from the ring; if that is gone (or the gateway restarted: another boot id) it gets
 * `resync` and reloads its data. `ping` every heartbeatMs lets it notice a silent connection.
 */
import { randomBytes } from "node:crypto";
import type { StoredReading } from "../storage/types.ts";

export type LiveEventName = "readings" | "unit" | "alarm" | "excursion" | "lot" | "eligibility" | "agent";

export interface LiveFilter {
  siteId?: string | undefined;
  unitId?: string | undefined;
}

export interface LiveMessage {
  id?: string;
  event: LiveEventName | "hello" | "ping" | "resync";
  data: unknown;
}

/** A reading as the stream carries it (what the tiles and charts need). */
export type LiveReading = Pick<
  StoredReading,
  "siteId" | "unitId" | "probeId" | "observedAt" | "receivedAt" | "tempC" | "quality"
>;

interface StoredEvent {
  seq: number;
  name: LiveEventName;
  siteId: string | undefined;
  unitId: string | undefined;
  data: unknown;
}

export interface LiveSubscriber {
  filter: LiveFilter;
  send(message: LiveMessage): void;
}

export interface LiveHubOptions {
  replayEvents: number;
  heartbeatMs: number;
  /** How long stored readings are gathered into one `readings` event. */
  flushMs?: number;
  now?: () => number;
}

function matches(filter: LiveFilter, siteId: string | undefined, unitId: string | undefined): boolean {
  if (filter.siteId !== undefined && siteId !== undefined && filter.siteId !== siteId) return false;
  if (filter.unitId !== undefined && unitId !== undefined && filter.unitId !== unitId) return false;
  return true;
}

export class LiveHub {
  /** Changes on every gateway start, so a browser's Last-Event-ID from before is never trusted. */
  readonly boot = randomBytes(4).toString("hex");
  readonly #opts: Required<LiveHubOptions>;
  readonly #ring: StoredEvent[] = [];
  readonly #subscribers = new Set<LiveSubscriber>();
  #seq = 0;
  #pending: LiveReading[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  /** Readings handed to browsers, for /metrics-style checks in tests and the benchmark. */
  readingsSent = 0;

  constructor(opts: LiveHubOptions) {
    this.#opts = { flushMs: 100, now: Date.now, ...opts };
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  start(): void {
    this.#pingTimer = setInterval(() => {
      const data = { serverTime: this.#opts.now() };
      for (const s of this.#subscribers) s.send({ event: "ping", data });
    }, this.#opts.heartbeatMs);
    this.#pingTimer.unref();
  }

  stop(): void {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#subscribers.clear();
  }

  publish(name: LiveEventName, data: unknown, scope: { siteId?: string; unitId?: string } = {}): void {
    const e: StoredEvent = { seq: ++this.#seq, name, siteId: scope.siteId, unitId: scope.unitId, data };
    if (this.#opts.replayEvents > 0) {
      this.#ring.push(e);
      if (this.#ring.length > this.#opts.replayEvents) this.#ring.shift();
    }
    for (const s of this.#subscribers) this.#deliver(s, e);
  }

  /** Readings just stored; sent within flushMs as one `readings` event. */
  readings(readings: readonly StoredReading[]): void {
    if (readings.length === 0) return;
    for (const r of readings) {
      this.#pending.push({
        siteId: r.siteId,
        unitId: r.unitId,
        probeId: r.probeId,
        observedAt: r.observedAt,
        receivedAt: r.receivedAt,
        tempC: r.tempC,
        quality: r.quality,
      });
    }
    this.#flushTimer ??= setTimeout(() => this.flush(), this.#opts.flushMs);
  }

  /** Send the gathered readings now. */
  flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    this.publish("readings", batch);
  }

  /**
   * Add a browser. `lastEventId` (from its Last-Event-ID header) replays what it missed, or
   * tells it to `resync` when that is no longer known.
   */
  subscribe(sub: LiveSubscriber, lastEventId?: string | null): () => void {
    sub.send({
      event: "hello",
      data: { serverTime: this.#opts.now(), heartbeatMs: this.#opts.heartbeatMs },
      id: this.#id(this.#seq),
    });
    if (lastEventId) this.#replay(sub, lastEventId);
    this.#subscribers.add(sub);
    return () => {
      this.#subscribers.delete(sub);
    };
  }

  #replay(sub: LiveSubscriber, lastEventId: string): void {
    const [boot, n] = lastEventId.split("-");
    const last = Number(n);
    const oldest = this.#ring[0]?.seq ?? this.#seq + 1;
    if (boot !== this.boot || !Number.isInteger(last) || last > this.#seq || last < oldest - 1) {
      sub.send({ event: "resync", data: { reason: boot === this.boot ? "too_old" : "restarted" } });
      return;
    }
    for (const e of this.#ring) if (e.seq > last) this.#deliver(sub, e);
  }

  #deliver(sub: LiveSubscriber, e: StoredEvent): void {
    if (e.name === "readings") {
      const all = e.data as LiveReading[];
      const mine = all.filter((r) => matches(sub.filter, r.siteId, r.unitId));
      if (mine.length === 0) return;
      this.readingsSent += mine.length;
      sub.send({ id: this.#id(e.seq), event: "readings", data: { readings: mine } });
      return;
    }
    if (!matches(sub.filter, e.siteId, e.unitId)) return;
    sub.send({ id: this.#id(e.seq), event: e.name, data: e.data });
  }

  #id(seq: number): string {
    return `${this.boot}-${seq}`;
  }
}
