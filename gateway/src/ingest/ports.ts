/**
 * What ingest needs from the excursion engine (`EnginePort`; the excursions module provides
 * it) and whom it tells about what happened (`IngestListeners`; the gateway host fans these
 * out to the extensions). Domain events and the event sink are kernel vocabulary
 * (kernel/events.ts).
 */
import type { Movement, UnitKind } from "@coldtrace/protocol";
import type { DomainEvent, GapRecordRow } from "../kernel/events.ts";
import type { SqlExecutor } from "../storage/sql/database.ts";
import type { AgentRecord, StoredReading } from "../storage/types.ts";

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
  ingest(readings: readonly StoredReading[]): DomainEvent[];
  reportEvictedRange(gap: GapRecordRow): DomainEvent[];
  acknowledge(
    alarmId: string,
    ack: { by: string; comment: string; correctiveAction: string },
    at: number,
  ): DomainEvent[];
  tick(now: number): DomainEvent[];
}

/** Listeners the gateway host (and tests) hang on ingest. */
export interface IngestListeners {
  /** `tx`: the records transaction the outputs' records commit in, once ingest has one (#14). */
  onEngineOutputs?(outputs: readonly DomainEvent[], tx?: SqlExecutor): void | Promise<void>;
  onGap?(gap: GapRecordRow): void | Promise<void>;
  onMovement?(movement: Movement): void | Promise<void>;
  /** Readings just appended to the reading store (only the new ones). Synchronous, never throws. */
  onReadingsStored?(readings: readonly StoredReading[]): void;
  /** An agent's record after a birth or a state message was stored. Synchronous, never throws. */
  onAgent?(agent: AgentRecord): void;
}
