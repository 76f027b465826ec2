/**
 * What the escalation listens to, read from the wire contract:
 *
 *   ct/v1/{site}/events/alarm/{unit}   alarm.raised / alarm.acknowledged / alarm.cleared
 *   ct/v1/{site}/agent/{agent}/state   a last will (offline, no reason) / online again
 *
 * Alarm kinds are read as strings, so kinds newer than this contract version (the gateway's
 * system alarms) still arrive; the configuration decides which escalate.
 */
import { agentState, alarmEvent, ColdtraceError, describeIssues, parseTopic } from "@coldtrace/protocol";
import { z } from "zod";
import type { Trigger } from "./messages.ts";

const anyKindAlarm = alarmEvent.extend({ kind: z.string().min(1).max(64) });

export type EscalationInput =
  | { type: "raised"; trigger: Trigger }
  | { type: "acknowledged"; key: string; by: string; at: number }
  | { type: "cleared"; key: string; at: number }
  | { type: "agent-online"; siteId: string; agentId: string; at: number }
  | { type: "ignored"; why: string };

export function agentOfflineKey(siteId: string, agentId: string, sessionId: string): string {
  return `agent-offline-${siteId}-${agentId}-${sessionId}`;
}

function json(topic: string, payload: Buffer | string | object): unknown {
  if (typeof payload === "object" && !Buffer.isBuffer(payload)) return payload; // already parsed by the mqtt node
  try {
    return JSON.parse(typeof payload === "string" ? payload : payload.toString("utf8"));
  } catch {
    throw new ColdtraceError("CT_WIRE_INVALID", `${topic}: payload is not JSON`, { topic });
  }
}

function invalid(topic: string, err: z.ZodError, input: unknown): ColdtraceError {
  const issues = describeIssues(err, input);
  return new ColdtraceError(
    "CT_WIRE_INVALID",
    `${topic}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
    { topic, issues },
  );
}

/** Read one MQTT message. Throws CT_WIRE_INVALID / CT_TOPIC_INVALID on bad input. */
export function readEscalationInput(topic: string, payload: Buffer | string | object): EscalationInput {
  const t = parseTopic(topic);
  if (payload === "" || (Buffer.isBuffer(payload) && payload.length === 0)) {
    return { type: "ignored", why: "empty payload (a retained state being cleared)" };
  }
  const body = json(topic, payload);
  if (t.kind === "alarm") {
    const r = anyKindAlarm.safeParse(body);
    if (!r.success) throw invalid(topic, r.error, body);
    const a = r.data;
    if (a.siteId !== t.siteId || a.unitId !== t.unitId) {
      throw new ColdtraceError("CT_WIRE_INVALID", `${topic}: siteId/unitId do not match the topic`, {
        topic,
      });
    }
    if (a.type === "alarm.raised") {
      return {
        type: "raised",
        trigger: {
          key: a.alarmId,
          source: "alarm",
          siteId: a.siteId,
          unitId: a.unitId,
          kind: a.kind,
          raisedAt: a.raisedAt,
          message: a.message,
          ...(a.probeId === undefined ? {} : { probeId: a.probeId }),
          ...(a.tier === undefined ? {} : { tier: a.tier }),
          ...(a.side === undefined ? {} : { side: a.side }),
          ...(a.valueC === undefined ? {} : { valueC: a.valueC }),
          ...(a.limitC === undefined ? {} : { limitC: a.limitC }),
        },
      };
    }
    if (a.type === "alarm.acknowledged") {
      return { type: "acknowledged", key: a.alarmId, by: a.acknowledged?.by ?? "unknown", at: a.at };
    }
    return { type: "cleared", key: a.alarmId, at: a.clearedAt ?? a.at };
  }
  if (t.kind === "agentState") {
    const r = agentState.safeParse(body);
    if (!r.success) throw invalid(topic, r.error, body);
    const s = r.data;
    if (s.agentId !== t.agentId) {
      throw new ColdtraceError("CT_WIRE_INVALID", `${topic}: agentId does not match the topic`, { topic });
    }
    if (s.state === "online") return { type: "agent-online", siteId: t.siteId, agentId: s.agentId, at: s.at };
    if (s.reason === "shutdown") return { type: "ignored", why: "orderly shutdown" };
    return {
      type: "raised",
      trigger: {
        key: agentOfflineKey(t.siteId, s.agentId, s.sessionId),
        source: "agent",
        siteId: t.siteId,
        agentId: s.agentId,
        kind: "agent_offline",
        raisedAt: s.at,
        message: `agent ${s.agentId} lost its connection (last will of session ${s.sessionId})`,
      },
    };
  }
  return { type: "ignored", why: `not an escalation topic (${t.kind})` };
}
