/**
 * Shared helpers of the SQL backends: turning bad rows into `CT_STORE_IO` errors with context
 * (driver failures: sql/errors.ts), and mapping reading rows to `StoredReading`.
 * A store never crashes the process on bad data: it throws a ColdtraceError the caller handles.
 */
import { ColdtraceError, quality as qualitySchema } from "@coldtrace/protocol";
import type { Backend } from "./sql/errors.ts";
import type { Quality, StoredReading } from "./types.ts";

/** Bad data read back from a backend. */
export function badRow(backend: Backend, where: string, field: string, got: unknown): ColdtraceError {
  return new ColdtraceError(
    "CT_STORE_IO",
    `${backend}: ${where}.${field}: unexpected value ${JSON.stringify(got)?.slice(0, 80) ?? String(got)}`,
    { backend, where, field },
  );
}

/** A finite number from a number, bigint or numeric string (pg returns int8 as string). */
export function num(backend: Backend, where: string, field: string, v: unknown): number {
  const n =
    typeof v === "number" ? v : typeof v === "bigint" || typeof v === "string" ? Number(v) : Number.NaN;
  if (!Number.isFinite(n) || (typeof v === "string" && v.trim() === ""))
    throw badRow(backend, where, field, v);
  return n;
}

export function numOrNull(backend: Backend, where: string, field: string, v: unknown): number | null {
  return v === null || v === undefined ? null : num(backend, where, field, v);
}

export function str(backend: Backend, where: string, field: string, v: unknown): string {
  if (typeof v !== "string" || v.length === 0) throw badRow(backend, where, field, v);
  return v;
}

export function bool(backend: Backend, where: string, field: string, v: unknown): boolean {
  if (typeof v === "boolean") return v;
  if (v === 0 || v === 1) return v === 1;
  if (typeof v === "bigint" && (v === 0n || v === 1n)) return v === 1n;
  throw badRow(backend, where, field, v);
}

export function qualityOf(backend: Backend, where: string, v: unknown): Quality {
  const parsed = qualitySchema.safeParse(v);
  if (!parsed.success) throw badRow(backend, where, "quality", v);
  return parsed.data;
}

/** JSON column: text (SQLite) or already parsed (PostgreSQL jsonb). Must be an object. */
export function jsonObject(
  backend: Backend,
  where: string,
  field: string,
  v: unknown,
): Record<string, unknown> {
  let value = v;
  if (typeof v === "string") {
    try {
      value = JSON.parse(v);
    } catch {
      throw badRow(backend, where, field, v);
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw badRow(backend, where, field, v);
  return value as Record<string, unknown>;
}

/** A `readings` row (snake_case columns) as a StoredReading, checking every field. */
export function readingFromRow(backend: Backend, row: Record<string, unknown>): StoredReading {
  const where = "readings";
  return {
    agentId: str(backend, where, "agent_id", row.agent_id),
    seq: num(backend, where, "seq", row.seq),
    siteId: str(backend, where, "site_id", row.site_id),
    unitId: str(backend, where, "unit_id", row.unit_id),
    probeId: str(backend, where, "probe_id", row.probe_id),
    observedAt: num(backend, where, "observed_at", row.observed_at),
    receivedAt: num(backend, where, "received_at", row.received_at),
    tempC: numOrNull(backend, where, "temp_c", row.temp_c),
    quality: qualityOf(backend, where, row.quality),
    backfill: bool(backend, where, "backfill", row.backfill),
  };
}

export function readingKey(r: { agentId: string; seq: number }): string {
  return `${r.agentId}\u0000${r.seq}`;
}

/**
 * The latest reading per (unit, probe) among `readings`, for the `reading_latest` table
 * upserted with each batch (so `latest()` never scans months of data).
 */
export function latestPerProbe(readings: readonly StoredReading[]): StoredReading[] {
  const best = new Map<string, StoredReading>();
  for (const r of readings) {
    const k = `${r.unitId}\u0000${r.probeId}`;
    const cur = best.get(k);
    if (!cur || isLater(r, cur)) best.set(k, r);
  }
  return [...best.values()];
}

/** Later by observedAt, then by (agentId, seq) so every backend breaks ties the same way. */
export function isLater(a: StoredReading, b: StoredReading): boolean {
  if (a.observedAt !== b.observedAt) return a.observedAt > b.observedAt;
  if (a.agentId !== b.agentId) return a.agentId > b.agentId;
  return a.seq > b.seq;
}

export function compareReadings(a: StoredReading, b: StoredReading): number {
  if (a.observedAt !== b.observedAt) return a.observedAt - b.observedAt;
  if (a.probeId !== b.probeId) return a.probeId < b.probeId ? -1 : 1;
  if (a.agentId !== b.agentId) return a.agentId < b.agentId ? -1 : 1;
  return a.seq - b.seq;
}

export function checkBucketMs(backend: Backend, bucketMs: number): void {
  if (!Number.isInteger(bucketMs) || bucketMs < 1) {
    throw new ColdtraceError(
      "CT_STORE_IO",
      `${backend}: downsample bucketMs must be a positive integer, got ${bucketMs}`,
      {
        backend,
        bucketMs,
      },
    );
  }
}
