/**
 * The stale detector: a probe whose value has not changed for longer than `staleAfterMs` is
 * probably stuck (frozen firmware, a disconnected input latched at its last value). Only ok
 * readings feed it; a fault resets nothing, a change restarts the timer.
 */

export interface StaleDetector {
  /** Records an ok value at `at`; returns true when the value is stale. */
  observe(tempC: number, at: number): boolean;
}

export function createStaleDetector(staleAfterMs: number): StaleDetector {
  let lastValue: number | undefined;
  let unchangedSince = 0;
  return {
    observe(tempC, at) {
      if (lastValue === undefined || tempC !== lastValue) {
        lastValue = tempC;
        unchangedSince = at;
        return false;
      }
      return at - unchangedSince > staleAfterMs;
    },
  };
}
