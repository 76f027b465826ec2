/**
 * The reference transfer-planner consumer (docs/integrator/planner.md): what a planner does
 * with the gateway's lot stream. It subscribes to the retained eligibility states and the lot
 * events, keeps one row per lot and site, and reports every change.
 *
 *   ct/v1/{site}/eligibility/+  (retained) ─┐
 *   ct/v1/{site}/events/lot/+               ─┴▶ decode (contract) ─▶ dedupe by eventId
 *        ─▶ drop states older than the row (lotSeq) ─▶ detect missed lot events ─▶ table + onChange
 *
 * Rules it follows (docs/protocol.md): dedupe events on `eventId` (QoS 1 is at least once); a
 * state whose `lotSeq` is lower than the one it has is stale; a lot event whose `lotSeq` skips
 * a number means one was missed, and the retained eligibility is the truth to fall back on.
 */
import { decodeMessage, type Eligibility, type LotEvent, topicFilters } from "@coldtrace/protocol";
import mqtt, { type MqttClient } from "mqtt";

export interface PlannerRow {
  siteId: string;
  lotId: string;
  eligibility: Eligibility | null;
  /** Highest lotSeq of a lot event seen for the lot at the site. */
  lastLotSeq: number;
}

export type PlannerChange =
  | { kind: "eligibility"; row: PlannerRow; previous: Eligibility | null }
  | { kind: "lot-event"; event: LotEvent }
  | { kind: "stale-state"; state: Eligibility; haveLotSeq: number }
  | { kind: "duplicate"; eventId: string }
  | { kind: "missed-events"; siteId: string; lotId: string; expected: number; got: number }
  | { kind: "invalid"; topic: string; message: string };

export interface PlannerConsumer {
  readonly client: MqttClient;
  /** Current rows, sorted by site then lot. */
  table(): PlannerRow[];
  row(siteId: string, lotId: string): PlannerRow | undefined;
  /** Lot events in arrival order (first copies only). */
  events(): LotEvent[];
  close(): Promise<void>;
}

export interface PlannerOptions {
  url: string;
  /** Narrow to one site; default all sites. */
  siteId?: string;
  clientId?: string;
  /** MQTT account with the gateway's `planner` role. */
  username?: string;
  password?: string;
  onChange?: (change: PlannerChange) => void;
}

/** Connects, subscribes (QoS 1) and resolves once both subscriptions are acknowledged. */
export async function startPlannerConsumer(opts: PlannerOptions): Promise<PlannerConsumer> {
  const rows = new Map<string, PlannerRow>();
  const seenEvents = new Set<string>();
  const events: LotEvent[] = [];
  const emit = (c: PlannerChange) => opts.onChange?.(c);
  const key = (siteId: string, lotId: string) => `${siteId}\u0000${lotId}`;
  const rowFor = (siteId: string, lotId: string): PlannerRow => {
    let r = rows.get(key(siteId, lotId));
    if (!r) {
      r = { siteId, lotId, eligibility: null, lastLotSeq: 0 };
      rows.set(key(siteId, lotId), r);
    }
    return r;
  };

  const client = mqtt.connect(opts.url, {
    clientId: opts.clientId ?? `ct-planner-${process.pid}-${Date.now() % 100000}`,
    reconnectPeriod: 500,
    ...(opts.username === undefined ? {} : { username: opts.username }),
    ...(opts.password === undefined ? {} : { password: opts.password }),
  });
  client.on("message", (topic, payload) => {
    let msg: ReturnType<typeof decodeMessage>;
    try {
      msg = decodeMessage(topic, payload);
    } catch (err) {
      emit({ kind: "invalid", topic, message: (err as Error).message });
      return;
    }
    if (msg.kind === "eligibility") {
      const state = msg.payload;
      const r = rowFor(state.siteId, state.lotId);
      const have = r.eligibility?.lotSeq ?? 0;
      if (state.lotSeq < have) {
        emit({ kind: "stale-state", state, haveLotSeq: have });
        return;
      }
      const previous = r.eligibility;
      r.eligibility = state;
      emit({ kind: "eligibility", row: { ...r }, previous });
    } else if (msg.kind === "lot") {
      const ev = msg.payload;
      if (seenEvents.has(ev.eventId)) {
        emit({ kind: "duplicate", eventId: ev.eventId });
        return;
      }
      seenEvents.add(ev.eventId);
      events.push(ev);
      const r = rowFor(ev.siteId, ev.lotId);
      if (ev.lotSeq > r.lastLotSeq + 1 && r.lastLotSeq > 0) {
        emit({
          kind: "missed-events",
          siteId: ev.siteId,
          lotId: ev.lotId,
          expected: r.lastLotSeq + 1,
          got: ev.lotSeq,
        });
      }
      r.lastLotSeq = Math.max(r.lastLotSeq, ev.lotSeq);
      emit({ kind: "lot-event", event: ev });
    }
  });

  const subscribe = () =>
    client.subscribeAsync(
      {
        [topicFilters.eligibility(opts.siteId)]: { qos: 1 },
        [`ct/v1/${opts.siteId ?? "+"}/events/lot/+`]: { qos: 1 },
      },
      {},
    );
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  await subscribe();

  return {
    client,
    table: () =>
      [...rows.values()]
        .map((r) => ({ ...r }))
        .sort((a, b) =>
          a.siteId === b.siteId ? (a.lotId < b.lotId ? -1 : 1) : a.siteId < b.siteId ? -1 : 1,
        ),
    row: (siteId, lotId) => {
      const r = rows.get(key(siteId, lotId));
      return r ? { ...r } : undefined;
    },
    events: () => [...events],
    close: () => client.endAsync(),
  };
}

/** One line per change, for the demo and a technician's terminal. */
export function formatChange(c: PlannerChange): string {
  switch (c.kind) {
    case "eligibility": {
      const e = c.row.eligibility!;
      const budget = `budget high ${e.remainingBudgetMinutes.high ?? "–"} / low ${e.remainingBudgetMinutes.low ?? "–"} min`;
      const was = c.previous ? `${c.previous.status}→` : "";
      return `${e.siteId} ${e.lotId}: ${was}${e.status} ${e.eligible ? "ELIGIBLE" : "HOLD"} qty ${e.transferableQuantity}, ${budget}${e.reasons.length ? ` — ${e.reasons.join("; ")}` : ""}`;
    }
    case "lot-event":
      return `${c.event.siteId} ${c.event.lotId}: #${c.event.lotSeq} ${c.event.type} qty ${c.event.quantity}${c.event.unitId ? ` in ${c.event.unitId}` : ""}${c.event.by ? ` by ${c.event.by}` : ""} — ${c.event.reason}`;
    case "stale-state":
      return `${c.state.siteId} ${c.state.lotId}: stale state lotSeq ${c.state.lotSeq} < ${c.haveLotSeq}, dropped`;
    case "duplicate":
      return `duplicate ${c.eventId} ignored`;
    case "missed-events":
      return `${c.siteId} ${c.lotId}: missed lot events ${c.expected}…${c.got - 1}; trusting the retained eligibility`;
    case "invalid":
      return `invalid message on ${c.topic}: ${c.message}`;
  }
}
