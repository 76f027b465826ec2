/**
 * At most one warning per key (a unit, a reason and unit …) per `everyMs`, so a misconfigured
 * agent that sends bad data with every batch gives a line a minute, not a line a batch. The
 * events in between are counted, and the warning that does go out says how many there were.
 */
export class WarnThrottle {
  readonly #everyMs: number;
  readonly #keys = new Map<string, { at: number; pending: number }>();

  constructor(everyMs: number) {
    this.#everyMs = everyMs;
  }

  /** Record `n` events of `key` at `now`: the count since the last warning if one is due now, else undefined. */
  due(key: string, n: number, now: number): number | undefined {
    let k = this.#keys.get(key);
    if (!k) {
      k = { at: Number.NEGATIVE_INFINITY, pending: 0 };
      this.#keys.set(key, k);
    }
    k.pending += n;
    if (now - k.at < this.#everyMs) return undefined;
    const count = k.pending;
    k.at = now;
    k.pending = 0;
    return count;
  }
}
