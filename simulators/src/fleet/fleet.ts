/**
 * The fleet generator: N sites × units × probes, each site one simulated edge agent that
 * speaks the wire contract exactly as a real agent does — retained birth and `online` state on
 * connect (last will `offline`), then telemetry batches per unit at QoS 1 with one monotonic
 * `seq` counter per agent. Time is simulated (`observedAt` = simulated event time), so a fleet
 * can run at `speed`× real time, or as fast as the broker acknowledges (`blast`) for benchmarks.
 *
 *   sim clock ─▶ per probe: a reading every intervalMs (base temperature ± noise,
 *                or the injected excursion temperature inside its window)
 *            ─▶ per unit: one telemetry batch (≤ batchMaxReadings) ─▶ MQTT QoS 1
 *            ─▶ onBatch(info) with the wall time it was published (latency measurement)
 *
 * Ids are prefixed (`sitePrefix`) so parallel runs on a shared broker never collide.
 */
import { encodePayload, formatTopic, MAX_READINGS_PER_BATCH, type UnitKind } from "@coldtrace/protocol";
import { connect, type IClientOptions, type MqttClient } from "mqtt";

export interface ExcursionInjection {
  /** Site index (0-based), unit index within the site (0-based). */
  site: number;
  unit: number;
  /** Simulated ms after the fleet's `startAt` when the temperature jumps. */
  afterMs: number;
  durationMs: number;
  tempC: number;
}

export interface FleetOptions {
  url: string;
  sites: number;
  /** Units per site. */
  units: number;
  /** Probes per unit. */
  probes: number;
  /** Prefix of every site id; make it unique per run on a shared broker. */
  sitePrefix?: string;
  unitKind?: UnitKind;
  /** Simulated reading interval per probe. */
  intervalMs?: number;
  /** Simulated start (epoch ms). Default: now, rounded down to the interval. */
  startAt?: number;
  baseTempC?: number;
  excursion?: ExcursionInjection;
  /** More injections (e.g. one per unit, for latency percentiles). */
  excursions?: ExcursionInjection[];
  /** MQTT account for an agent; default username = agent id, no password. */
  credentials?: (agent: FleetAgent) => { username?: string; password?: string };
  /** Readings per telemetry message at most (contract: 2000). */
  batchMaxReadings?: number;
  /** Called after each telemetry batch was acknowledged (PUBACK) by the broker. */
  onBatch?: (info: BatchInfo) => void;
}

export interface FleetAgent {
  agentId: string;
  siteId: string;
  unitIds: string[];
}

export interface BatchInfo {
  agentId: string;
  siteId: string;
  unitId: string;
  readings: number;
  firstObservedAt: number;
  lastObservedAt: number;
  /** performance.now() just before the publish. */
  publishedAtMs: number;
  /** Highest temperature in the batch. */
  maxTempC: number;
}

interface SimAgent extends FleetAgent {
  client?: MqttClient;
  nextSeq: number;
  sessionId: string;
}

function noise(agentSeq: number, probe: number): number {
  // Deterministic ±0.3 °C wobble: the same run gives the same readings.
  return Math.sin(agentSeq * 0.7 + probe * 1.3) * 0.3;
}

export class Fleet {
  readonly options: Required<Omit<FleetOptions, "excursion" | "excursions" | "credentials" | "onBatch">> &
    Pick<FleetOptions, "excursion" | "excursions" | "credentials" | "onBatch">;
  readonly agents: SimAgent[] = [];
  /** Simulated time up to which readings have been generated (exclusive). */
  simNow: number;
  readingsSent = 0;
  batchesSent = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #injected: ExcursionInjection[];

  constructor(opts: FleetOptions) {
    const intervalMs = opts.intervalMs ?? 10_000;
    const startAt = opts.startAt ?? Math.floor(Date.now() / intervalMs) * intervalMs;
    this.options = {
      sitePrefix: "fleet",
      unitKind: "fridge",
      intervalMs,
      startAt,
      baseTempC: 5,
      batchMaxReadings: MAX_READINGS_PER_BATCH,
      ...opts,
    };
    this.simNow = startAt;
    this.#injected = this.#injections();
    const { sites, units, sitePrefix } = this.options;
    for (let s = 0; s < sites; s++) {
      const siteId = `${sitePrefix}-${s + 1}`;
      this.agents.push({
        agentId: `${siteId}-pi`,
        siteId,
        unitIds: Array.from({ length: units }, (_, u) => `${siteId}-u${u + 1}`),
        nextSeq: 1,
        sessionId: `s-${Date.now().toString(36)}`,
      });
    }
  }

  probeIds(unitId: string): string[] {
    return Array.from({ length: this.options.probes }, (_, p) => `${unitId}-p${p + 1}`);
  }

  /** Readings per simulated second across the fleet. */
  get readingsPerSimSecond(): number {
    const { sites, units, probes, intervalMs } = this.options;
    return (sites * units * probes * 1000) / intervalMs;
  }

  /** Connect every agent, publish birth and `online` (retained), as the edge agent does. */
  async start(): Promise<void> {
    await Promise.all(this.agents.map((a) => this.#connect(a)));
  }

  async #connect(a: SimAgent): Promise<void> {
    const creds = this.options.credentials?.(a) ?? { username: a.agentId };
    const stateTopic = formatTopic({ kind: "agentState", siteId: a.siteId, agentId: a.agentId });
    const connectedAt = Date.now();
    const options: IClientOptions = {
      clientId: a.agentId,
      reconnectPeriod: 1000,
      clean: true,
      ...creds,
      will: {
        topic: stateTopic,
        payload: encodePayload("agentState", {
          v: 1,
          agentId: a.agentId,
          state: "offline",
          sessionId: a.sessionId,
          at: connectedAt,
        }),
        qos: 1,
        retain: true,
      },
    };
    const client = connect(this.options.url, options);
    await new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", (err) => {
        client.end(true);
        reject(err);
      });
    });
    // TCP_NODELAY, as the latency of one small batch is what the bench measures.
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    a.client = client;
    const probes = a.unitIds.flatMap((unitId) =>
      this.probeIds(unitId).map((probeId) => ({
        probeId,
        unitId,
        driver: "modbus-rtu" as const,
        intervalMs: Math.max(100, this.options.intervalMs),
        calibrationOffsetC: 0,
        calibrationDueAt: null,
      })),
    );
    const birth = encodePayload("birth", {
      v: 1,
      agentId: a.agentId,
      siteId: a.siteId,
      sessionId: a.sessionId,
      agentVersion: "fleet-sim",
      configHash: "0".repeat(64),
      startedAt: connectedAt,
      nextSeq: a.nextSeq,
      units: a.unitIds.map((unitId) => ({
        unitId,
        kind: this.options.unitKind,
        probeIds: this.probeIds(unitId),
      })),
      probes,
    });
    await client.publishAsync(formatTopic({ kind: "birth", siteId: a.siteId, agentId: a.agentId }), birth, {
      qos: 1,
      retain: true,
    });
    await client.publishAsync(
      stateTopic,
      encodePayload("agentState", {
        v: 1,
        agentId: a.agentId,
        state: "online",
        sessionId: a.sessionId,
        at: connectedAt,
      }),
      { qos: 1, retain: true },
    );
  }

  #injections(): ExcursionInjection[] {
    return [...(this.options.excursion ? [this.options.excursion] : []), ...(this.options.excursions ?? [])];
  }

  #tempAt(siteIndex: number, unitIndex: number, t: number, seq: number, probe: number): number {
    for (const x of this.#injected) {
      if (
        x.site === siteIndex &&
        x.unit === unitIndex &&
        t >= this.options.startAt + x.afterMs &&
        t < this.options.startAt + x.afterMs + x.durationMs
      ) {
        return x.tempC;
      }
    }
    return Math.round((this.options.baseTempC + noise(seq, probe)) * 100) / 100;
  }

  /**
   * Generate and publish every reading with observedAt in [simNow, until), one batch per unit
   * per call (split at batchMaxReadings). Resolves when the broker acknowledged all of them.
   */
  async advanceTo(until: number): Promise<number> {
    const { intervalMs, startAt } = this.options;
    const first = Math.ceil((this.simNow - startAt) / intervalMs);
    const last = Math.ceil((until - startAt) / intervalMs); // exclusive
    if (last <= first) return 0;
    const pending: Promise<unknown>[] = [];
    let count = 0;
    this.agents.forEach((a, siteIndex) => {
      a.unitIds.forEach((unitId, unitIndex) => {
        const probeIds = this.probeIds(unitId);
        let readings: string[] = [];
        let firstObservedAt = 0;
        let lastObservedAt = 0;
        let maxTempC = Number.NEGATIVE_INFINITY;
        const flush = () => {
          if (readings.length === 0) return;
          pending.push(this.#publish(a, unitId, readings, firstObservedAt, lastObservedAt, maxTempC));
          count += readings.length;
          readings = [];
          maxTempC = Number.NEGATIVE_INFINITY;
        };
        for (let k = first; k < last; k++) {
          const observedAt = startAt + k * intervalMs;
          for (let p = 0; p < probeIds.length; p++) {
            const seq = a.nextSeq++;
            const tempC = this.#tempAt(siteIndex, unitIndex, observedAt, seq, p);
            if (readings.length === 0) firstObservedAt = observedAt;
            lastObservedAt = observedAt;
            if (tempC > maxTempC) maxTempC = tempC;
            // Hand-built JSON of a contract reading (validated by the fleet tests): zod on every
            // reading would make the generator, not the gateway, the bottleneck of the bench.
            readings.push(
              `{"seq":${seq},"probeId":"${probeIds[p]}","observedAt":${observedAt},"tempC":${tempC},"quality":"ok","backfill":false}`,
            );
            if (readings.length >= this.options.batchMaxReadings) flush();
          }
        }
        flush();
      });
    });
    this.simNow = startAt + last * intervalMs;
    await Promise.all(pending);
    return count;
  }

  async #publish(
    a: SimAgent,
    unitId: string,
    readings: string[],
    firstObservedAt: number,
    lastObservedAt: number,
    maxTempC: number,
  ): Promise<void> {
    const client = a.client;
    if (!client) throw new Error(`fleet agent ${a.agentId} is not connected`);
    const body = `{"v":1,"agentId":"${a.agentId}","unitId":"${unitId}","sessionId":"${a.sessionId}","sentAt":${Date.now()},"readings":[${readings.join(",")}]}`;
    const publishedAtMs = performance.now();
    await client.publishAsync(
      formatTopic({ kind: "telemetry", siteId: a.siteId, agentId: a.agentId, unitId }),
      body,
      {
        qos: 1,
      },
    );
    this.readingsSent += readings.length;
    this.batchesSent++;
    this.options.onBatch?.({
      agentId: a.agentId,
      siteId: a.siteId,
      unitId,
      readings: readings.length,
      firstObservedAt,
      lastObservedAt,
      publishedAtMs,
      maxTempC,
    });
  }

  /**
   * Run in accelerated real time: every `tickMs` of wall time, simulated time advances by
   * tickMs × speed. Returns at once; `stop()` ends it.
   */
  runRealtime(opts: {
    speed: number;
    tickMs?: number;
    onError?: (err: unknown) => void;
    /**
     * Never simulate past the wall clock: once simulated time reaches now it goes on at 1×
     * (`onCaughtUp` is called once). A gateway sets aside readings dated ahead of its clock.
     */
    notAheadOfClock?: boolean;
    onCaughtUp?: () => void;
  }): void {
    const tickMs = opts.tickMs ?? 250;
    let busy = false;
    let caughtUp = false;
    const wallStart = performance.now();
    const simStart = this.simNow;
    this.#timer = setInterval(() => {
      if (busy) return;
      busy = true;
      let target = simStart + (performance.now() - wallStart) * opts.speed;
      if (opts.notAheadOfClock && target > Date.now()) {
        target = Date.now();
        if (!caughtUp) opts.onCaughtUp?.();
        caughtUp = true;
      }
      this.advanceTo(target)
        .catch((err: unknown) => opts.onError?.(err))
        .finally(() => {
          busy = false;
        });
    }, tickMs);
  }

  /** Publish `offline` with reason shutdown and disconnect every agent. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all(
      this.agents.map(async (a) => {
        const c = a.client;
        if (!c) return;
        try {
          if (c.connected) {
            await c.publishAsync(
              formatTopic({ kind: "agentState", siteId: a.siteId, agentId: a.agentId }),
              encodePayload("agentState", {
                v: 1,
                agentId: a.agentId,
                state: "offline",
                sessionId: a.sessionId,
                at: Date.now(),
                reason: "shutdown",
              }),
              { qos: 1, retain: true },
            );
          }
        } finally {
          await c.endAsync();
          a.client = undefined;
        }
      }),
    );
  }
}
