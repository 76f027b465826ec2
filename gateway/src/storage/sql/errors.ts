/**
 * The one way a store failure becomes an error: every driver failure of SQLite, PostgreSQL and
 * InfluxDB is a `CT_STORE_IO` naming the backend and the operation, with the driver's error as
 * `cause`. A ColdtraceError passes through unchanged, so a wrapped error is never wrapped twice.
 */
import { ColdtraceError } from "@coldtrace/protocol";

export type Backend = "sqlite" | "postgres" | "influx";

/** Wrap any failure as CT_STORE_IO; a ColdtraceError passes through unchanged. */
export function storeError(
  backend: Backend,
  op: string,
  err: unknown,
  context: Record<string, unknown> = {},
): ColdtraceError {
  if (err instanceof ColdtraceError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new ColdtraceError(
    "CT_STORE_IO",
    `${backend}: ${op} failed: ${detail}`,
    { backend, op, ...context },
    {
      cause: err,
    },
  );
}
