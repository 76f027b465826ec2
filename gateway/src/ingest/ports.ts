/**
 * The seams ingest talks through: where events go (`EventSink`; the lots module replaces the
 * direct MQTT sink with a transactional outbox), and what ingest needs from the excursion
 * engine (`EnginePort`, adapted from gateway/src/excursions by the runtime).
 */
import type { AlarmEvent, ExcursionEvent, UnitKind } from "@coldtrace/protocol";
import type { GapRecordRow, StoredReading } from "../storage/types.ts";

export type EventKind = "alarm" | "excursion" | "lot" | "eligibility";

/** Publishes one contract event (QoS 1; retained only where the contract says so). */
export interface EventSink {
  publish(kind: EventKind, topic: string, payload: unknown): Promise<void>;
}

/** What the engine says after readings, a gap, an acknowledgement or a tick. */
export type EngineOutput =
  | { type: "alarm"; event: AlarmEvent }
  | { type: "excursion"; event: ExcursionEvent; detail?: Record<string, unknown> }
  | { type: "gap"; gap: GapRecordRow };

export interface UnitRegistration {
  unitId: string;
  siteId: string;
  kind: UnitKind;
  probeIds: string[];
  /** A profile from the configuration (validated by the engine), or undefined for its defaults. */
  profile?: unknown;
}

export interface EnginePort {
  registerUnit(unit: UnitRegistration): void;
  ingest(readings: readonly StoredReading[]): EngineOutput[];
  reportEvictedRange(gap: GapRecordRow): EngineOutput[];
  acknowledge(
    alarmId: string,
    ack: { by: string; comment: string; correctiveAction: string },
    at: number,
  ): EngineOutput[];
  tick(now: number): EngineOutput[];
}

/** Listeners the lots module (and tests) hang on the runtime. */
export interface IngestListeners {
  onEngineOutputs?(outputs: readonly EngineOutput[]): void | Promise<void>;
  onGap?(gap: GapRecordRow): void | Promise<void>;
}
