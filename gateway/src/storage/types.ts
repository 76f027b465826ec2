/**
 * The storage seams of the gateway: a `ReadingStore` for the time series (SQLite, PostgreSQL or
 * InfluxDB 1.x) and a `RecordStore` for everything else (units, probes, agents, alarms,
 * excursions, gaps; SQLite or PostgreSQL). Every backend passes the same contract suites in
 * gateway/test/storage/. Times are UTC epoch milliseconds; `observedAt` is event time,
 * `receivedAt` is arrival at the gateway.
 *
 * Ranges are half-open everywhere: `from <= t < to`.
 */
import type { AlarmEvent, Birth, ExcursionEvent, Quality, TimeQuality, UnitKind } from "@coldtrace/protocol";
import type { GapRecordRow } from "../kernel/events.ts";

export type { Quality };

/** One reading as stored: the wire reading plus where it came from and when it arrived. */
export interface StoredReading {
  agentId: string;
  /** Per-agent sequence number; (agentId, seq) identifies a reading. */
  seq: number;
  siteId: string;
  unitId: string;
  probeId: string;
  observedAt: number;
  receivedAt: number;
  tempC: number | null;
  quality: Quality;
  backfill: boolean;
  /** The agent's doubt about its clock (reading.timeQuality); absent when trusted. Not stored yet. */
  timeQuality?: TimeQuality;
}

export interface AppendResult {
  /** The readings that were new, in input order (the first copy when a batch repeats one). */
  inserted: StoredReading[];
  /** How many input readings were already stored or repeated within the batch. */
  duplicates: number;
}

/** One downsampled bucket. `start` is aligned to the epoch: floor(observedAt / bucketMs) * bucketMs. */
export interface ReadingBucket {
  start: number;
  probeId: string;
  min: number;
  max: number;
  mean: number;
  count: number;
}

export interface ReadingRangeQuery {
  siteId?: string;
  unitId: string;
  probeId?: string;
  /** Inclusive. */
  from: number;
  /** Exclusive. */
  to: number;
  limit?: number;
}

export interface DownsampleQuery {
  unitId: string;
  probeId?: string;
  from: number;
  to: number;
  bucketMs: number;
}

export interface ReadingStore {
  /** Idempotent by (agentId, seq): a reading seen before is a duplicate, whatever batch it comes in. */
  append(readings: readonly StoredReading[]): Promise<AppendResult>;
  /** Ordered by observedAt, then probeId (then agentId, seq). */
  range(q: ReadingRangeQuery): Promise<StoredReading[]>;
  /**
   * min/max/mean/count per bucket and probe over `ok` readings with a temperature, for charts over
   * months of data. Only non-empty buckets; ordered by start, then probeId.
   */
  downsample(q: DownsampleQuery): Promise<ReadingBucket[]>;
  /** The latest reading (by observedAt) per probe of the unit, whatever its quality; ordered by probeId. */
  latest(unitId: string): Promise<StoredReading[]>;
  /**
   * How many of an agent's sequence numbers fromSeq..toSeq (inclusive) are not stored. An agent
   * reports readings it evicted unsent as a seq range; 0 here means every one of them arrived.
   */
  missingSeqs(agentId: string, fromSeq: number, toSeq: number): Promise<number>;
  close(): Promise<void>;
}

export interface UnitRecord {
  unitId: string;
  siteId: string;
  kind: UnitKind;
  name?: string;
  /** The excursion/limit profile applied to this unit, when one is assigned. */
  profileId?: string;
}

export interface ProbeRecord {
  probeId: string;
  unitId: string;
  siteId: string;
  agentId?: string;
  driver?: string;
  intervalMs?: number;
  calibrationOffsetC?: number;
  calibrationDueAt: number | null;
}

export interface AgentRecord {
  agentId: string;
  siteId: string;
  sessionId: string;
  state: "online" | "offline";
  lastSeenAt: number;
  /** The last birth certificate, as received. */
  birth: Birth | null;
  configHash: string | null;
}

export type AlarmState = "raised" | "acknowledged" | "cleared";

/** The contract alarm event's fields (without envelope v/type/eventId/at), plus its current state. */
export type AlarmRecord = Omit<AlarmEvent, "v" | "type" | "eventId" | "at"> & {
  state: AlarmState;
  /** When this record last changed (event time of the last alarm event). */
  updatedAt: number;
};

/**
 * The contract excursion event's fields (without envelope v/type/eventId/at); open while
 * `endedAt` is null. `detail` holds extra engine metrics (JSON).
 */
export type ExcursionRecord = Omit<ExcursionEvent, "v" | "type" | "eventId" | "at"> & {
  updatedAt: number;
  detail: Record<string, unknown>;
};

/** A hole in a unit's record (declared with the domain events it travels with). */
export type { GapRecordRow };

/** Time filters on records select rows whose span [start, end] overlaps [from, to). */
export interface AlarmQuery {
  siteId?: string;
  unitId?: string;
  state?: AlarmState;
  from?: number;
  to?: number;
}

export interface ExcursionQuery {
  siteId?: string;
  unitId?: string;
  from?: number;
  to?: number;
  /** true: only open (endedAt null); false: only closed. */
  open?: boolean;
}

export interface GapQuery {
  siteId?: string;
  agentId?: string;
  unitId?: string;
  from?: number;
  to?: number;
}

export interface RecordStore {
  upsertUnit(u: UnitRecord): Promise<void>;
  listUnits(siteId?: string): Promise<UnitRecord[]>;
  getUnit(unitId: string): Promise<UnitRecord | undefined>;
  upsertProbe(p: ProbeRecord): Promise<void>;
  listProbes(unitId?: string): Promise<ProbeRecord[]>;
  upsertAgent(a: AgentRecord): Promise<void>;
  listAgents(siteId?: string): Promise<AgentRecord[]>;
  upsertAlarm(a: AlarmRecord): Promise<void>;
  getAlarm(id: string): Promise<AlarmRecord | undefined>;
  listAlarms(q: AlarmQuery): Promise<AlarmRecord[]>;
  upsertExcursion(e: ExcursionRecord): Promise<void>;
  getExcursion(id: string): Promise<ExcursionRecord | undefined>;
  listExcursions(q: ExcursionQuery): Promise<ExcursionRecord[]>;
  upsertGap(g: GapRecordRow): Promise<void>;
  listGaps(q: GapQuery): Promise<GapRecordRow[]>;
  close(): Promise<void>;
}
