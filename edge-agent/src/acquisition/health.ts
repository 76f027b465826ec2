/**
 * Per-probe health for the contract's probe-health payload (@coldtrace/protocol
 * probeHealth.probes[number]): fault counters since start, consecutive failures, last ok
 * reading, calibration due date and whether it is overdue.
 *
 * A probe is charged only with its own failures: `faults.comm_error` counts requests for its
 * own registers that failed. A comm_error reading for which nothing was asked (its slave
 * backing off, its port closed, its slave silent for another block) still breaks the run of
 * good readings (`consecutiveFailures`) but is not counted as the probe's comm_error.
 */
import type { ProbeHealth, Quality } from "@coldtrace/protocol";

export type ProbeHealthEntry = ProbeHealth["probes"][number];

export interface ProbeHealthTracker {
  /** `own`: the probe's own registers were asked (false: no request went out for it). */
  record(quality: Quality, at: number, own?: boolean): void;
  entry(now: number): ProbeHealthEntry;
}

/** A `YYYY-MM-DD` due date means "due by the end of that UTC day". */
export function calibrationDueAt(dueDate: string | undefined): number | null {
  if (dueDate === undefined) return null;
  const ms = Date.parse(`${dueDate}T00:00:00Z`);
  return Number.isNaN(ms) ? null : ms + 86_400_000 - 1;
}

export function createProbeHealth(
  probeId: string,
  unitId: string,
  dueDate: string | undefined,
): ProbeHealthTracker {
  const faults = { sensor_fault: 0, out_of_range: 0, comm_error: 0, stale: 0 };
  let consecutiveFailures = 0;
  let lastOkAt: number | null = null;
  const dueAt = calibrationDueAt(dueDate);
  return {
    record(quality, at, own = true) {
      if (quality === "ok") {
        consecutiveFailures = 0;
        lastOkAt = at;
        return;
      }
      if (quality !== "comm_error" || own) faults[quality]++;
      consecutiveFailures++;
    },
    entry(now) {
      return {
        probeId,
        unitId,
        calibrationDueAt: dueAt,
        calibrationOverdue: dueAt !== null && now > dueAt,
        faults: { ...faults },
        consecutiveFailures,
        lastOkAt,
      };
    },
  };
}
