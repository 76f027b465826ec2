/**
 * The one error class of Coldtrace. Every failure that crosses a module boundary is a
 * ColdtraceError with a string `code` grouped by area, and a `context` object that names
 * where it happened (topic, file, config path …). The code is appended to the message so it
 * survives a garbled log line (zwave-js habit). docs/reference/errors.md says how to fix each.
 */

export const errorCodes = {
  /** A payload failed the wire contract: not UTF-8, not JSON, or a field is wrong. */
  CT_WIRE_INVALID: "wire",
  /** A topic is not part of the contract tree. */
  CT_TOPIC_INVALID: "wire",
  /** A value given to a topic builder cannot be a topic segment. */
  CT_TOPIC_SEGMENT: "wire",
  /** A configuration file failed validation. */
  CT_CFG_INVALID: "config",
  /** A configuration file could not be read or parsed. */
  CT_CFG_UNREADABLE: "config",
  /** A probe read failed (timeout, exception response, CRC error …). */
  CT_PROBE_READ: "probe",
  /** A Modbus register block could not be decoded as configured. */
  CT_PROBE_DECODE: "probe",
  /** A local alarm relay (a Modbus coil) could not be switched. */
  CT_RELAY_WRITE: "probe",
  /** A configuration pushed to an agent was refused (invalid, a local-only key changed, a file it names missing). */
  CT_CONFIG_REJECTED: "config",
  /** A pushed configuration did not reach the broker or the probes in time: the agent went back to its last good one. */
  CT_CONFIG_ROLLBACK: "config",
  /** The outbox could not be opened or written. */
  CT_OUTBOX_IO: "outbox",
  /** A storage backend failed. */
  CT_STORE_IO: "store",
  /** The gateway's embedded MQTT broker could not listen on its port (taken, or not allowed). */
  CT_BROKER_PORT: "broker",
  /** A lot, product or movement request the lots service cannot accept (unknown lot, bad field). */
  CT_LOT_INVALID: "lots",
  /** A quarantine decision that the lot's current state does not allow (e.g. release of an available lot). */
  CT_LOT_STATE: "lots",
  /** A movementId already recorded with other content (a correction needs a new movementId). */
  CT_LOT_CONFLICT: "lots",
  /** A release refused: the lot is still in a unit whose excursion is open. */
  CT_LOT_IN_EXCURSION: "lots",
  /** A movements CSV file was rejected; nothing from it was imported. */
  CT_IMPORT_INVALID: "lots",
  /** An ERP document or file the ERP bridge cannot record (bad field, unknown unit); it is kept for retry. */
  CT_ERP_INVALID: "erp",
  /** An alarm id given to acknowledge (or look up) is not known to the excursion engine. */
  CT_ALARM_UNKNOWN: "alarms",
  /** A required service for a test or a command is missing. */
  CT_SERVICE_MISSING: "service",
  /** A REST request failed its route's schema (body, query or path), or is otherwise malformed. */
  CT_API_BAD_REQUEST: "api",
  /** A REST request without a known bearer token. */
  CT_API_UNAUTHORIZED: "api",
  /** A REST request for a route or a record that does not exist. */
  CT_API_NOT_FOUND: "api",
  /** A REST request failed inside the gateway; the gateway log has the cause. */
  CT_API_INTERNAL: "api",
} as const;

export type ErrorCode = keyof typeof errorCodes;

/**
 * The HTTP status of each code a REST request can cause (fastify keeps code, message and
 * status in one place, lib/errors.js). A code not listed is a server-side failure: 500. A new
 * code a client can cause gets its 4xx here, in the same change.
 */
export const errorHttpStatus: { readonly [C in ErrorCode]?: number } = {
  CT_WIRE_INVALID: 400,
  CT_TOPIC_SEGMENT: 400,
  CT_LOT_INVALID: 400,
  CT_LOT_CONFLICT: 409,
  CT_LOT_STATE: 409,
  CT_LOT_IN_EXCURSION: 409,
  CT_IMPORT_INVALID: 422,
  CT_ALARM_UNKNOWN: 409,
  CT_API_BAD_REQUEST: 400,
  CT_API_UNAUTHORIZED: 401,
  CT_API_NOT_FOUND: 404,
  CT_API_INTERNAL: 500,
};

/** The HTTP status of a code (500 when the registry names none). */
export function httpStatusOf(code: ErrorCode): number {
  return errorHttpStatus[code] ?? 500;
}

export class ColdtraceError extends Error {
  readonly code: ErrorCode;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    context: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(`${message} (${code})`, options);
    this.name = "ColdtraceError";
    this.code = code;
    this.context = context;
  }
}

export function isColdtraceError(err: unknown, code?: ErrorCode): err is ColdtraceError {
  return err instanceof ColdtraceError && (code === undefined || err.code === code);
}
