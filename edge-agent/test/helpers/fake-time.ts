/** Fakes at the time seams: a wall clock that can jump, and a sync source whose answer the test sets. */
import type { ClockSyncSource, SyncReport, TimeSource } from "../../src/timekeeping/index.ts";

/** Wall and monotonic time that advance together, and a wall clock that can be set. */
export function fakeTime(
  wallAtStart: number,
  monoAtStart = 50_000,
): TimeSource & {
  advance(ms: number): void;
  setWall(ms: number): void;
} {
  let wall = wallAtStart;
  let mono = monoAtStart;
  return {
    wallNow: () => wall,
    monoNow: () => mono,
    advance(ms) {
      wall += ms;
      mono += ms;
    },
    setWall(ms) {
      wall = ms;
    },
  };
}

export function fakeSync(initial: SyncReport): ClockSyncSource & { set(r: SyncReport): void } {
  let report = initial;
  return { name: "fake", check: async () => report, set: (r) => (report = r) };
}
