/**
 * Clock integrity with a fake time source (wall and monotonic clocks driven by hand, so the
 * wall clock can jump) and a fake synchronisation source; the real sources against real files
 * and a fake `timedatectl`.
 */
import { utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { manualClock } from "../../src/clock.ts";
import {
  type ClockSyncSource,
  noSyncSource,
  syncSourceFor,
  TimeKeeper,
  type TimeSource,
  timedatectlSource,
  timesyncdSource,
} from "../../src/timekeeping/index.ts";
import { captureLog, flush } from "../acquisition/helpers.ts";
import { fakeSync, fakeTime } from "../helpers/fake-time.ts";
import { tempDir } from "../helpers/tmp.ts";

const DAY = 86_400_000;
/** The time the box had at its last shutdown (fake-hwclock): two days behind. */
const STALE = Date.UTC(2026, 2, 1, 8, 0, 0);
const TRUE_TIME = STALE + 2 * DAY;

function keeper(time: TimeSource, sync: ClockSyncSource) {
  const clock = manualClock();
  const reanchors: number[] = [];
  const changes: boolean[] = [];
  const logs = captureLog();
  const tk = new TimeKeeper({
    source: time,
    sync,
    clock,
    log: logs.log,
    checkIntervalMs: 60_000,
    jumpThresholdMs: 2000,
    onTrusted: (offset) => {
      reanchors.push(offset);
      return 7;
    },
    onChange: (trusted) => changes.push(trusted),
  });
  return { tk, clock, reanchors, changes, logs };
}

describe("TimeKeeper", () => {
  it("flags readings until NTP steps the clock, then re-anchors with the new offset", async () => {
    const time = fakeTime(STALE);
    const sync = fakeSync({ state: "unsynchronised" });
    const { tk, reanchors, changes, logs } = keeper(time, sync);
    await tk.start();
    expect(tk.trusted()).toBe(false);
    expect(changes).toEqual([false]);
    const before = tk.stamp(time.wallNow());
    expect(before).toEqual({ monoMs: 50_000, timeQuality: "unsynchronised" });
    time.advance(10_000);
    expect(tk.stamp(time.wallNow())).toMatchObject({ monoMs: 60_000, timeQuality: "unsynchronised" });

    // timesyncd reaches a server and steps the clock two days forward; its flag file is touched.
    time.advance(3000);
    time.setWall(TRUE_TIME);
    sync.set({ state: "synchronised", lastSyncAt: TRUE_TIME });
    // The next reading sees the jump first.
    expect(tk.stamp(time.wallNow()).timeQuality).toBe("stepped");
    await flush();
    await flush();
    expect(tk.trusted()).toBe(true);
    // The reading at monotonic 50 000 really happened 13 s before TRUE_TIME.
    expect(reanchors).toHaveLength(1);
    expect((reanchors[0] ?? 0) + 50_000).toBe(TRUE_TIME - 13_000);
    expect(changes).toEqual([false, true]);
    expect(tk.stamp(time.wallNow())).toEqual({ monoMs: 63_000 });
    expect(tk.report(0)).toMatchObject({
      state: "synchronised",
      source: "fake",
      lastJump: { at: TRUE_TIME, deltaMs: TRUE_TIME - (STALE + 13_000) },
    });
    expect(logs.lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        "wall clock jumped; readings are flagged until the clock is confirmed",
        "clock synchronised: waiting readings re-anchored",
      ]),
    );
  });

  it("keeps readings after a jump flagged until a sync after the jump vouches for the new time", async () => {
    const time = fakeTime(TRUE_TIME);
    const sync = fakeSync({ state: "synchronised", lastSyncAt: TRUE_TIME - 60_000 });
    const { tk, clock, reanchors } = keeper(time, sync);
    await tk.start();
    expect(tk.stamp(time.wallNow())).toEqual({ monoMs: 50_000 });
    // Someone sets the clock by hand, an hour off; timesyncd's flag file still exists (older).
    time.advance(1000);
    time.setWall(time.wallNow() + 3_600_000);
    expect(tk.stamp(time.wallNow()).timeQuality).toBe("stepped");
    await flush();
    expect(tk.trusted()).toBe(false);
    // Checks while untrusted come every 5 s; the flag is still older than the jump.
    time.advance(5000);
    clock.advance(5000);
    await flush();
    expect(tk.stamp(time.wallNow()).timeQuality).toBe("stepped");
    // timesyncd syncs again, stepping the clock back to the truth.
    time.advance(1000);
    time.setWall(TRUE_TIME + 7000);
    sync.set({ state: "synchronised", lastSyncAt: TRUE_TIME + 7000 });
    tk.stamp(time.wallNow());
    await flush();
    await flush();
    expect(tk.trusted()).toBe(true);
    expect(reanchors.at(-1)).toBe(TRUE_TIME + 7000 - 57_000);
  });

  it("without a sync source, flags only the readings around a jump", async () => {
    const time = fakeTime(TRUE_TIME);
    const { tk, reanchors } = keeper(time, noSyncSource);
    await tk.start();
    expect(tk.report(0).state).toBe("unknown");
    expect(tk.stamp(time.wallNow())).toEqual({ monoMs: 50_000 });
    time.advance(100);
    time.setWall(time.wallNow() - 10_000);
    expect(tk.stamp(time.wallNow()).timeQuality).toBe("stepped");
    await flush();
    expect(tk.trusted()).toBe(true);
    expect(reanchors).toEqual([]);
  });

  it("never trusts a wall clock before 2000, whatever the sync source says", async () => {
    const time = fakeTime(12_345_000);
    const { tk } = keeper(time, noSyncSource);
    await tk.start();
    expect(tk.trusted()).toBe(false);
    expect(tk.stamp(time.wallNow()).timeQuality).toBe("unsynchronised");
    expect(tk.report(0)).toMatchObject({ state: "unsynchronised", since: null });
  });
});

describe("clock sync sources", () => {
  it("timesyncd: the flag file's presence and mtime", async () => {
    const tmp = tempDir();
    const flag = join(tmp.dir, "synchronized");
    expect(await timesyncdSource(flag).check()).toEqual({ state: "unsynchronised" });
    writeFileSync(flag, "");
    utimesSync(flag, TRUE_TIME / 1000, TRUE_TIME / 1000);
    expect(await timesyncdSource(flag).check()).toEqual({ state: "synchronised", lastSyncAt: TRUE_TIME });
    // auto picks timesyncd when its state folder exists.
    expect((await syncSourceFor("auto", { flag })).name).toBe("timesyncd");
    tmp.remove();
  });

  it("timedatectl: the kernel's NTP status, unknown when it cannot answer", async () => {
    const answer = (out: string | Error) => async () => {
      if (out instanceof Error) throw out;
      return out;
    };
    expect(await timedatectlSource(answer("yes\n")).check()).toEqual({ state: "synchronised" });
    expect(await timedatectlSource(answer("no\n")).check()).toEqual({ state: "unsynchronised" });
    expect(await timedatectlSource(answer(new Error("Failed to connect to bus"))).check()).toEqual({
      state: "unknown",
    });
    const calls: string[][] = [];
    await timedatectlSource(async (file, args) => {
      calls.push([file, ...args]);
      return "yes";
    }).check();
    expect(calls).toEqual([["timedatectl", "show", "--property=NTPSynchronized", "--value"]]);
    // auto without timesyncd: timedatectl when chronyd or ntpd runs and it answers, else none.
    const noFlag = "/nonexistent/timesync/synchronized";
    const chrony = tempDir();
    const withChrony = { flag: noFlag, otherClients: [chrony.dir] };
    expect((await syncSourceFor("auto", { ...withChrony, exec: answer("no") })).name).toBe("timedatectl");
    expect((await syncSourceFor("auto", { ...withChrony, exec: answer(new Error("x")) })).name).toBe("none");
    let spawned = false;
    const spy = async () => {
      spawned = true;
      return "yes";
    };
    expect(
      (await syncSourceFor("auto", { flag: noFlag, otherClients: ["/nonexistent"], exec: spy })).name,
    ).toBe("none");
    expect(spawned).toBe(false);
    chrony.remove();
  });
});
