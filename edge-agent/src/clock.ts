/**
 * The time seam of the edge agent. Everything that schedules (poll cadence, backoff, stale
 * detection) takes a `Clock`, so tests can drive time by hand instead of sleeping.
 */

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real wall clock and Node timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * A clock that only moves when told to, for tests. `advance(ms)` fires every timer that falls
 * due in order, including timers scheduled by the timers it fires.
 */
export interface ManualClock extends Clock {
  advance(ms: number): void;
  /** Number of timers still pending. */
  pending(): number;
}

export function manualClock(startAt = Date.UTC(2026, 0, 1)): ManualClock {
  let nowMs = startAt;
  let nextId = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => nowMs,
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { at: nowMs + Math.max(0, ms), fn });
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    advance(ms) {
      const until = nowMs + ms;
      for (;;) {
        let dueId: number | undefined;
        let dueAt = Number.POSITIVE_INFINITY;
        for (const [id, t] of timers) {
          if (t.at <= until && t.at < dueAt) {
            dueAt = t.at;
            dueId = id;
          }
        }
        if (dueId === undefined) break;
        const t = timers.get(dueId)!;
        timers.delete(dueId);
        nowMs = Math.max(nowMs, t.at);
        t.fn();
      }
      nowMs = until;
    },
    pending: () => timers.size,
  };
}
