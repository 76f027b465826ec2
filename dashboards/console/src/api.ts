/**
 * The gateway's API as the console uses it: one `api()` that adds the sign-in token and turns
 * errors into `ApiError` (status + the gateway's message), and the shapes of what the console
 * endpoints answer (GET /openapi.json, tag `console`, is the reference).
 *
 * Stage 1 signs in with an API token kept in this browser (localStorage). User accounts,
 * sessions and per-user language come with the QA records API: only `token.ts` and the
 * sign-in page change then.
 */
import { clearToken, getToken } from "./token.ts";

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Called when the gateway says the token is not (or no longer) valid. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (init.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`/api/v1${path}`, {
    method: init.method ?? "GET",
    headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  if (res.status === 401) {
    clearToken();
    onUnauthorized();
  }
  if (!res.ok) {
    let message = res.statusText;
    try {
      const body = (await res.json()) as { message?: string };
      if (body.message) message = body.message;
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(res.status, message);
  }
  return (await res.json()) as T;
}

export const qs = (params: Record<string, string | number | undefined>): string => {
  const entries = Object.entries(params).filter((e): e is [string, string | number] => e[1] !== undefined);
  return entries.length === 0 ? "" : `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)]))}`;
};

export type UnitState = "action" | "alert" | "offline" | "gap" | "ok";
export type StateReason =
  | "temperature_action"
  | "temperature_alert"
  | "excursion_action"
  | "excursion_alert"
  | "probe_drift"
  | "agent_offline"
  | "no_agent"
  | "no_readings"
  | "readings_late"
  | "gap_alarm"
  | "in_range";

export interface Site {
  siteId: string;
  name: string;
  timeZone: string;
}

export interface Limits {
  low: number | null;
  high: number | null;
}

export interface ProbeTile {
  probeId: string;
  tempC: number | null;
  quality: string | null;
  observedAt: number | null;
  receivedAt: number | null;
  fault: boolean;
  calibrationDueAt: number | null;
  calibration: "ok" | "due_soon" | "overdue" | "unknown";
}

export interface UnitTile {
  unitId: string;
  siteId: string;
  name: string;
  kind: string;
  state: UnitState;
  reason: StateReason;
  range: Limits;
  probes: ProbeTile[];
  agent: { agentId: string; state: "online" | "offline"; lastSeenAt: number } | null;
  openAlarms: number;
  unacknowledgedAlarms: number;
  openExcursion: {
    excursionId: string;
    side: string;
    tier: string;
    startedAt: number;
    peakC: number;
    troughC: number;
  } | null;
  lastReadingAt: number | null;
}

export interface Fleet {
  generatedAt: number;
  sites: Site[];
  units: UnitTile[];
}

export interface Settings {
  defaultLanguage: "zh-CN" | "en";
  defaultTimeZone: string;
  heartbeatMs: number;
  sites: Site[];
  signedInAs: string;
}

export interface Alarm {
  alarmId: string;
  siteId: string;
  unitId: string;
  probeId?: string;
  kind: string;
  state: "raised" | "acknowledged" | "cleared";
  tier?: string;
  side?: string;
  raisedAt: number;
  clearedAt?: number;
  message: string;
  updatedAt: number;
  acknowledged?: { by: string; comment: string; correctiveAction: string };
}

export interface Excursion {
  excursionId: string;
  siteId: string;
  unitId: string;
  unitKind: string;
  side: string;
  tier: string;
  startedAt: number;
  endedAt: number | null;
  durationMs: number;
  peakC: number;
  troughC: number;
  degreeMinutes: number;
  minutesBeyond: { alert: number; action: number };
  mktC: number;
  updatedAt: number;
}

export interface Inbox {
  generatedAt: number;
  sites: Site[];
  units: { unitId: string; siteId: string; name: string }[];
  alarms: Alarm[];
  excursions: Excursion[];
}

export interface Profile {
  source: "defaults" | "byKind" | "byUnit";
  range: Limits;
  alert: Limits;
  action: Limits;
  delayMs: { alert: number; action: number };
  hysteresisC: number;
  maxGapMs: number;
  recordMs: number;
}

export interface UnitDetail {
  generatedAt: number;
  site: Site;
  unit: UnitTile;
  profile: Profile | null;
  probes: {
    probeId: string;
    driver: string | null;
    intervalMs: number | null;
    calibrationOffsetC: number | null;
  }[];
  lots: { lotId: string; siteId: string; quantity: number }[];
}

export interface Eligibility {
  siteId: string;
  lotId: string;
  sku: string;
  status: string;
  eligible: boolean;
  expiresAt: number | null;
  transferableQuantity: number;
  remainingBudgetMinutes: { high: number | null; low: number | null };
  reasons: string[];
  updatedAt: number;
  lotSeq: number;
}

export interface Lot {
  generatedAt: number;
  lotId: string;
  sku: string | null;
  expiresAt: number | null;
  sites: Site[];
  eligibility: Eligibility[];
  holds: {
    holdId: string;
    siteId: string;
    unitId: string;
    causeId: string;
    quantity: number;
    status: string;
    reason: string;
    createdAt: number;
    decidedBy: string | null;
    decidedReason: string | null;
    decidedAt: number | null;
  }[];
  exposures: {
    causeId: string;
    cause: "excursion" | "gap";
    unitId: string;
    siteId: string;
    from: number;
    to: number;
    quantity: number;
    side: string | null;
    tier: string | null;
    minutesAbove: number;
    minutesBelow: number;
    peakC: number | null;
    troughC: number | null;
  }[];
  stays: { unitId: string; siteId: string; quantity: number; from: number; to: number | null }[];
}

export interface Reading {
  siteId: string;
  unitId: string;
  probeId: string;
  observedAt: number;
  receivedAt: number;
  tempC: number | null;
  quality: string;
}

/** GET /api/v1/units/{unitId}/readings: raw readings, or buckets when bucketMs is given. */
export interface ReadingsResponse {
  readings?: { probeId: string; observedAt: number; tempC: number | null; quality: string }[];
  buckets?: { start: number; probeId: string; min: number; max: number; mean: number; count: number }[];
}
