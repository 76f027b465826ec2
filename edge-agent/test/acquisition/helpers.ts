/** Test plumbing for acquisition suites: a capturing logger and event waits. */
import pino from "pino";

export interface CapturedLog {
  log: pino.Logger;
  lines: Record<string, unknown>[];
  count(msg: string): number;
}

export function captureLog(level: pino.Level = "debug"): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines, count: (msg) => lines.filter((l) => l.msg === msg).length };
}

/** Resolves when `predicate` holds; fails with `what` after timeoutMs. Polls, does not assert timing. */
export async function waitFor(
  predicate: () => boolean,
  what: string | (() => string),
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Lets pending promise callbacks and I/O run (for manual-clock tests). */
export const flush = () => new Promise((r) => setImmediate(r));
