/**
 * The domain events the gateway's modules pass each other: what the excursion engine decided
 * (`DomainEvent`: an alarm step, an excursion step, a hole in a unit's record), and where
 * contract events go (`EventSink`). Wire shapes come from @coldtrace/protocol; this file adds
 * no I/O and no rules.
 *
 *   excursions module ─ DomainEvent[] ─▶ ingest ─▶ records (alarms, excursions, gaps)
 *                                          └──────▶ extensions' onEngineOutputs (lots, qa …)
 *
 * Not to be confused with the excursion engine's own `EngineOutput` (excursions/engine.ts),
 * whose gaps are the engine's connectivity-gap state: the excursions module turns those into
 * the `GapRecordRow` stored here.
 */
import type { AlarmEvent, ExcursionEvent } from "@coldtrace/protocol";

/** The contract event kinds the gateway itself publishes. */
export type EventKind = "alarm" | "excursion" | "lot" | "eligibility";

/** Publishes one contract event (QoS 1; retained only where the contract says so). */
export interface EventSink {
  publish(kind: EventKind, topic: string, payload: unknown): Promise<void>;
}

/** A hole in a unit's record: an agent's outbox eviction (contract gapRecord) or a gap the gateway found. */
export interface GapRecordRow {
  gapId: string;
  agentId: string;
  siteId: string;
  reason: string;
  unitIds: string[];
  probeIds: string[];
  fromObservedAt: number;
  toObservedAt: number;
  fromSeq: number | null;
  toSeq: number | null;
  droppedCount: number | null;
  /** When the gap was reported or detected. */
  at: number;
}

/** What the engine says after readings, a gap, an acknowledgement or a tick. */
export type DomainEvent =
  | { type: "alarm"; event: AlarmEvent }
  | { type: "excursion"; event: ExcursionEvent; detail?: Record<string, unknown> }
  | { type: "gap"; gap: GapRecordRow };
