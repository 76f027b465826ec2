/**
 * Building blocks shared by every payload: ids that are safe as MQTT topic segments,
 * event times, the contract version marker.
 */
import { z } from "zod";

/** Contract major version carried in every payload as `v`. Topics carry it as `ct/v1`. */
export const CONTRACT_VERSION = 1 as const;
export const version = z.literal(CONTRACT_VERSION);

/**
 * Site, agent, unit and probe ids become topic segments, so they may not contain the MQTT
 * separators or wildcards (`/ + #`) [MQTT-4.7.1-1] nor spaces; 1–64 characters.
 */
export const segmentId = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/,
    "must be 1–64 of A–Z a–z 0–9 . _ : - and start with a letter or digit",
  );

/** Lot numbers come from suppliers and may hold any printable text; topics percent-encode them. */
export const lotId = z
  .string()
  .min(1, "must not be empty")
  .max(128, "must be at most 128 characters")
  .regex(/^[^\p{Cc}]+$/u, "must not contain control characters");

/** Event time: milliseconds since the Unix epoch, UTC, as an integer. 2000-01-01 … 2200-01-01. */
export const epochMs = z
  .number()
  .int("must be an integer number of milliseconds")
  .min(946_684_800_000, "must be a UTC epoch in milliseconds after 2000-01-01")
  .max(7_258_118_400_000, "must be a UTC epoch in milliseconds before 2200-01-01");

/** A temperature in °C. Physical sanity bounds; probes report faults with a quality flag instead. */
export const celsius = z.number().min(-273.15, "is below absolute zero").max(1000, "is above 1000 °C");

/** The agent's per-agent sequence number: monotonic across restarts, never wraps (unlike Sparkplug's 0–255). */
export const sequence = z
  .number()
  .int("must be an integer")
  .min(1, "must be ≥ 1")
  .max(Number.MAX_SAFE_INTEGER);

export const unitKind = z.enum(["fridge", "freezer", "room", "transit_box"]);
export type UnitKind = z.infer<typeof unitKind>;

export const eventId = z
  .string()
  .min(8)
  .max(128)
  .regex(/^[A-Za-z0-9._:-]+$/, "must be 8–128 of A–Z a–z 0–9 . _ : -");
