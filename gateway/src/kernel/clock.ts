/**
 * The gateway's one clock seam. Everything that needs "now" (arrival times, the engine's tick,
 * lot sweeps, outbox timestamps) takes a `Clock`, so tests and simulations drive time instead
 * of sleeping. Event time (`observedAt`) never comes from here: it comes from the readings.
 */
export interface Clock {
  /** UTC epoch milliseconds. */
  now(): number;
}

/** Wall-clock time (`Date.now`). */
export const systemClock: Clock = { now: () => Date.now() };
