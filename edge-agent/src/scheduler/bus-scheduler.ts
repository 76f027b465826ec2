/**
 * The poll scheduler of one bus. An RS-485 line carries one request at a time, so each bus has
 * exactly one queue: polls and coil writes go through `exclusive()` one after another, while
 * different buses run in parallel.
 *
 *   clock timer ─► due probes ─► group by slave ─┬─ slave backing off? → comm_error, no traffic
 *                                                 └─ driver.read(group) (one request per block)
 *                                                     all failed → failures++, backoff 2^n (capped)
 *                                                     any answer → failures = 0
 *   driver lost / never opened ─► reopen with backoff; due probes → comm_error meanwhile
 *
 * Per-slave backoff keeps a dead slave (each attempt costs timeoutMs × (1 + retries) of bus
 * time) from starving the healthy slaves on the same line. Time comes from the Clock seam.
 */
import { ColdtraceError } from "@coldtrace/protocol";
import type { Logger } from "pino";
import type { Clock } from "../clock.ts";
import type { ProbeDriver, ProbeRead } from "../drivers/types.ts";

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

/** Delay after the n-th consecutive failure (n ≥ 1): initial × 2^(n−1), capped. */
export function backoffDelay(policy: BackoffPolicy, failures: number): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

export interface BusSchedulerOptions<P extends { id: string; intervalMs: number }> {
  busId: string;
  probes: readonly P[];
  driver: ProbeDriver<P>;
  clock: Clock;
  log: Logger;
  backoff: BackoffPolicy;
  /** Probes that answer or fail together (a Modbus slave id; one key for a serial line). */
  groupKey: (probe: P) => string | number;
  /**
   * Called for every reading; `attempted` is false when no request for the probe's registers
   * went out (backoff, port closed, or the driver skipped it after its slave fell silent).
   */
  onRead: (probe: P, read: ProbeRead, observedAt: number, attempted: boolean) => void;
}

export interface SlaveState {
  failures: number;
  backoffUntil: number;
  /** Requests actually sent to this group. */
  attempts: number;
}

export interface BusScheduler {
  /** Opens the driver (a failure is retried with backoff) and starts polling. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Runs `fn` alone on the bus, between polls. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  slaveState(key: string | number): SlaveState | undefined;
}

export function createBusScheduler<P extends { id: string; intervalMs: number }>(
  options: BusSchedulerOptions<P>,
): BusScheduler {
  const { busId, probes, driver, clock, backoff, groupKey, onRead } = options;
  // Every line of this bus names it; the caller's logger must not carry busId already.
  const log = options.log.child({ busId });
  const nextDueAt = new Map<string, number>();
  const slaves = new Map<string | number, SlaveState>();
  let openFailures = 0;
  let reopenAt = 0;
  let timer: unknown;
  let stopped = true;
  let cycle: Promise<void> = Promise.resolve();
  let queue: Promise<unknown> = Promise.resolve();

  function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  }

  function emit(probe: P, read: ProbeRead, observedAt: number, attempted: boolean) {
    try {
      onRead(probe, read, observedAt, attempted);
    } catch (err) {
      log.error({ err, probeId: probe.id }, "reading consumer failed");
    }
  }

  async function tryOpen(): Promise<void> {
    try {
      await exclusive(() => driver.open());
      if (openFailures > 0) log.info("bus reopened");
      else log.info("bus opened");
      openFailures = 0;
    } catch (err) {
      openFailures++;
      const delay = backoffDelay(backoff, openFailures);
      reopenAt = clock.now() + delay;
      log.warn({ err, retryInMs: delay }, "bus open failed");
    }
  }

  function failedRead(probe: P, message: string, context: Record<string, unknown>): ProbeRead {
    return {
      probeId: probe.id,
      tempC: null,
      quality: "comm_error",
      error: new ColdtraceError("CT_PROBE_READ", `bus ${busId}: ${message}`, {
        busId,
        probeId: probe.id,
        ...context,
      }),
    };
  }

  async function pollDue(): Promise<void> {
    const start = clock.now();
    if (!driver.isOpen() && start >= reopenAt) {
      await driver.close().catch(() => undefined);
      await tryOpen();
    }
    const due = probes.filter((p) => (nextDueAt.get(p.id) ?? 0) <= start);
    for (const p of due) {
      let next = (nextDueAt.get(p.id) ?? start) + p.intervalMs;
      if (next <= start) next = start + p.intervalMs;
      nextDueAt.set(p.id, next);
    }
    const groups = new Map<string | number, P[]>();
    for (const p of due) {
      const key = groupKey(p);
      groups.set(key, [...(groups.get(key) ?? []), p]);
    }
    for (const [key, group] of groups) {
      if (stopped) return;
      const now = clock.now();
      if (!driver.isOpen()) {
        for (const p of group) emit(p, failedRead(p, "port not open", {}), now, false);
        continue;
      }
      const state = slaves.get(key) ?? { failures: 0, backoffUntil: 0, attempts: 0 };
      slaves.set(key, state);
      if (state.backoffUntil > now) {
        for (const p of group)
          emit(
            p,
            failedRead(p, `${key} not polled: backing off after ${state.failures} failures`, { key }),
            now,
            false,
          );
        continue;
      }
      state.attempts++;
      const reads = await exclusive(() => driver.read(group));
      const byId = new Map(reads.map((r) => [r.probeId, r]));
      // A slave that answered with anything (even a sensor fault) is alive; only silence backs off.
      const allFailed = group.every((p) => {
        const r = byId.get(p.id);
        return !r || r.quality === "comm_error";
      });
      if (allFailed) {
        state.failures++;
        const delay = backoffDelay(backoff, state.failures);
        state.backoffUntil = clock.now() + delay;
        log.debug({ key, failures: state.failures, retryInMs: delay }, "slave backing off");
      } else {
        state.failures = 0;
        state.backoffUntil = 0;
      }
      for (const p of group) {
        const r = byId.get(p.id) ?? failedRead(p, "no result from driver", {});
        emit(p, r, now, r.attempted !== false);
      }
      if (!driver.isOpen() && reopenAt <= clock.now()) {
        openFailures = Math.max(openFailures, 1);
        reopenAt = clock.now() + backoffDelay(backoff, openFailures);
        log.warn({ retryInMs: reopenAt - clock.now() }, "bus lost");
      }
    }
  }

  function schedule() {
    if (stopped) return;
    let next = Number.POSITIVE_INFINITY;
    for (const p of probes) next = Math.min(next, nextDueAt.get(p.id) ?? 0);
    if (!driver.isOpen()) next = Math.min(next, reopenAt);
    timer = clock.setTimeout(tick, Math.max(0, next - clock.now()));
  }

  function tick() {
    timer = undefined;
    cycle = pollDue()
      .catch((err: unknown) => log.error({ err }, "poll cycle failed"))
      .finally(schedule);
  }

  return {
    async start() {
      stopped = false;
      await tryOpen();
      const now = clock.now();
      for (const p of probes) nextDueAt.set(p.id, now);
      schedule();
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      await cycle;
      await exclusive(() => driver.close()).catch(() => undefined);
    },
    exclusive,
    slaveState: (key) => slaves.get(key),
  };
}
