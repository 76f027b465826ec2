/**
 * The agent's judgement of its own wall clock. Every reading is stamped with the monotonic
 * time it was taken at and, when the wall clock cannot be trusted, a time quality; when the
 * clock becomes trustworthy, readings still in the outbox are re-anchored from their
 * monotonic time.
 *
 *   stamp(observedAt) ─ offset = wall − monotonic ─┬─ moved > jumpThresholdMs? → jump: log, check now,
 *                      monoMs = observedAt − offset │    readings "stepped" until the clock is confirmed
 *                                                   └─ not synchronised? → "unsynchronised"
 *   check (every checkIntervalMs; 5 s while untrusted) ─ sync source ─┐
 *        untrusted → synchronised (and, after a jump, synced since it) ─▶ onTrusted(offset):
 *        the agent re-anchors observedAt := monoMs + offset for this boot's untrusted readings
 *
 * Monotonic time is CLOCK_MONOTONIC (process.hrtime on Linux): it never jumps and is the same
 * in every process of one boot, so readings stored by an earlier process of the same boot can
 * be re-anchored too; readings from an earlier boot cannot (the outbox keeps the boot). The
 * wall clock before 2000-01-01 (a box that booted at the epoch) is never trusted.
 */
import type { AgentClock, TimeQuality } from "@coldtrace/protocol";
import type { Logger } from "pino";
import type { Clock } from "../clock.ts";
import type { ClockSyncSource, SyncReport, SyncState } from "./sync-source.ts";

/** The time seam: wall and monotonic clocks (tests drive both by hand). */
export interface TimeSource {
  /** Wall clock, ms since the Unix epoch. */
  wallNow(): number;
  /** Monotonic clock, ms; never jumps. */
  monoNow(): number;
}

export const systemTime: TimeSource = {
  wallNow: () => Date.now(),
  monoNow: () => Number(process.hrtime.bigint() / 1000n) / 1000,
};

/** 2000-01-01: the contract rejects earlier event times; a clock before it is not set at all. */
const EARLIEST_TRUSTED = 946_684_800_000;
const UNTRUSTED_CHECK_MS = 5000;

export interface Stamp {
  monoMs: number;
  timeQuality?: TimeQuality;
}

export interface TimeKeeperOptions {
  source?: TimeSource;
  sync: ClockSyncSource;
  /** Timers for the periodic check. */
  clock: Clock;
  log: Logger;
  checkIntervalMs: number;
  jumpThresholdMs: number;
  /** The clock is trusted again: re-anchor with this offset (wall − monotonic). Returns how many. */
  onTrusted?: (offsetMs: number) => number;
  /** Called whenever trust changes (hold or release telemetry, publish health). */
  onChange?: (trusted: boolean) => void;
}

export class TimeKeeper {
  private readonly o: TimeKeeperOptions;
  private readonly source: TimeSource;
  private state: SyncState = "unknown";
  private since: number | null = null;
  private lastOffset: number | undefined;
  /** Monotonic time of the last look at the offset. */
  private lastLookMono = 0;
  /**
   * A jump not yet confirmed by a sync after it: the earliest wall time (new clock) it can
   * have happened at, i.e. the previous look expressed in the new clock.
   */
  private jumpAt: number | undefined;
  private lastJump: { at: number; deltaMs: number } | null = null;
  private timer: unknown;
  private checking: Promise<void> | undefined;
  private stopped = true;
  /** When the current untrusted stretch began (monotonic). */
  private untrustedSinceMono: number | undefined;

  constructor(options: TimeKeeperOptions) {
    this.o = options;
    this.source = options.source ?? systemTime;
  }

  /** First check (so the first readings are stamped knowingly), then periodic checks. */
  async start(): Promise<void> {
    this.stopped = false;
    this.observe();
    await this.check();
    this.o.log.info(
      { source: this.o.sync.name, state: this.state, wallClock: iso(this.source.wallNow()) },
      "clock state",
    );
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Readings' times can be trusted now. */
  trusted(): boolean {
    return (
      this.jumpAt === undefined &&
      this.state !== "unsynchronised" &&
      this.source.wallNow() >= EARLIEST_TRUSTED
    );
  }

  /** Stamps a reading observed at wall time `observedAt` (taken just now, by this clock). */
  stamp(observedAt: number): Stamp {
    const offset = this.observe();
    const monoMs = observedAt - offset;
    if (this.jumpAt !== undefined) return { monoMs, timeQuality: "stepped" };
    if (!this.trusted()) return { monoMs, timeQuality: "unsynchronised" };
    return { monoMs };
  }

  /** What probe health says about the clock. */
  report(untrustedPending: number): AgentClock {
    return {
      state: this.source.wallNow() < EARLIEST_TRUSTED ? "unsynchronised" : this.state,
      source: this.o.sync.name,
      since: this.since !== null && this.since >= EARLIEST_TRUSTED ? Math.round(this.since) : null,
      lastJump: this.lastJump,
      untrustedPending,
    };
  }

  /** Checks synchronisation now (also after a jump). */
  check(): Promise<void> {
    this.checking ??= this.runCheck().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private offset(): number {
    return this.source.wallNow() - this.source.monoNow();
  }

  /** The current offset; a jump since the last look is recorded and triggers a check. */
  private observe(): number {
    const mono = this.source.monoNow();
    const offset = this.source.wallNow() - mono;
    const before = this.lastOffset;
    const lastLook = this.lastLookMono;
    this.lastOffset = offset;
    this.lastLookMono = mono;
    if (before !== undefined && Math.abs(offset - before) > this.o.jumpThresholdMs) {
      const wasTrusted = this.trusted();
      const at = mono + offset;
      const deltaMs = Math.round(offset - before);
      // A sync that stepped the clock is at least this recent (NTP's step is the jump itself).
      this.jumpAt = lastLook + offset;
      this.lastJump = { at: Math.round(at), deltaMs };
      this.o.log.warn(
        { deltaMs, from: iso(at - deltaMs), to: iso(at) },
        "wall clock jumped; readings are flagged until the clock is confirmed",
      );
      this.markUntrusted(wasTrusted);
      void this.check();
    }
    return offset;
  }

  private markUntrusted(wasTrusted: boolean): void {
    this.untrustedSinceMono ??= this.source.monoNow();
    if (wasTrusted) this.o.onChange?.(false);
  }

  private async runCheck(): Promise<void> {
    let report: SyncReport;
    try {
      report = await this.o.sync.check();
    } catch {
      report = { state: "unknown" };
    }
    const wasTrusted = this.trusted();
    this.observe();
    if (report.state !== this.state) {
      this.since = this.source.wallNow();
      if (this.lastOffset !== undefined)
        this.o.log[report.state === "unsynchronised" ? "warn" : "info"](
          { state: report.state, source: this.o.sync.name, wallClock: iso(this.source.wallNow()) },
          report.state === "unsynchronised" ? "clock not synchronised" : "clock state changed",
        );
    }
    this.state = report.state;
    if (this.jumpAt !== undefined) {
      // A jump is over when a sync since it vouches for the new time. A source without a sync
      // time (timedatectl: the kernel marks a set clock unsynchronised) vouches by its state; a
      // source that knows nothing ("none") leaves only the readings around the jump flagged.
      const confirmed =
        report.state === "unknown" ||
        (report.state === "synchronised" &&
          (report.lastSyncAt === undefined || report.lastSyncAt >= this.jumpAt));
      if (confirmed || report.state === "unsynchronised") this.jumpAt = undefined;
    }
    const nowTrusted = this.trusted();
    if (!nowTrusted) this.markUntrusted(wasTrusted);
    else if (this.untrustedSinceMono !== undefined) {
      this.untrustedSinceMono = undefined;
      const offset = this.offset();
      const reanchored = report.state === "synchronised" ? (this.o.onTrusted?.(offset) ?? 0) : 0;
      this.o.log.info(
        { source: this.o.sync.name, wallClock: iso(this.source.wallNow()), reanchored },
        reanchored > 0 ? "clock synchronised: waiting readings re-anchored" : "clock trusted again",
      );
      this.o.onChange?.(true);
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    const ms = this.trusted() ? this.o.checkIntervalMs : Math.min(this.o.checkIntervalMs, UNTRUSTED_CHECK_MS);
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined;
      void this.check().finally(() => this.schedule());
    }, ms);
  }
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}
