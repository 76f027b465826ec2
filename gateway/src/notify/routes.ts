/**
 * REST of the notify module, schema-first (the schemas validate and feed /openapi.json):
 *
 *   POST /alarms/{alarmId}/notifications   one record from the escalation flow (idempotent by recordId)
 *   GET  /alarms/{alarmId}/notifications   the alarm's records, in the order they happened
 *   GET  /alarms/{alarmId}/timeline        raised, every notification, acknowledged, cleared — with
 *                                          ISO times for people, epoch ms for programs
 *
 * `alarmId` is the gateway's alarm id, or the flow's key for an escalation the gateway has no
 * alarm for (an agent's last will): those timelines hold the notifications only.
 */
import { type NotificationRecord, notificationRecord } from "@coldtrace/protocol";
import type { FastifyError, FastifyPluginAsync } from "fastify";
import { z } from "zod";
import { errors, noQuery } from "../api/schemas.ts";
import type { Clock } from "../kernel/clock.ts";
import type { AlarmRecord, RecordStore } from "../storage/types.ts";
import type { NotificationStore, StoredNotification } from "./store.ts";

const alarmId = { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$" } as const;
const ms = { type: "integer", minimum: 0, description: "UTC epoch milliseconds" } as const;
const params = { type: "object", required: ["alarmId"], properties: { alarmId } } as const;

/** The contract's notification record (protocol/src/schemas/notify.ts) as the route's JSON Schema. */
const recordBody = (() => {
  const { $schema: _, ...schema } = z.toJSONSchema(notificationRecord, {
    target: "draft-7",
    io: "input",
  }) as Record<string, unknown>;
  return schema as { type: "object"; properties: Record<string, unknown> };
})();

const storedRecord = {
  type: "object",
  properties: {
    ...recordBody.properties,
    receivedAt: { ...ms, description: "when the gateway received the record" },
    atIso: { type: "string", description: "`at` as ISO 8601, UTC" },
  },
} as const;

const timelineEntry = {
  type: "object",
  properties: {
    at: ms,
    atIso: { type: "string", description: "ISO 8601, UTC" },
    what: { type: "string", enum: ["raised", "notification", "acknowledged", "cleared"] },
    summary: { type: "string" },
    notification: storedRecord,
  },
} as const;

function error(status: number, message: string): FastifyError {
  const err = new Error(message) as FastifyError;
  err.statusCode = status;
  err.code = status === 404 ? "CT_API_NOT_FOUND" : "CT_API_BAD_REQUEST";
  return err;
}

const iso = (t: number) => new Date(t).toISOString();

function describeNotification(n: StoredNotification): string {
  const who = `${n.recipientName} (${n.recipient})`;
  if (n.status === "acknowledged") return `acknowledged by ${who} via ${n.channel}`;
  const what =
    n.kind === "all_clear" ? "all clear" : `tier ${n.tier}${n.round > 0 ? `, reminder ${n.round}` : ""}`;
  const how = `${n.channel} to ${who}${n.address ? ` at ${n.address}` : ""}`;
  if (n.status === "sent") return `${what}: ${how} sent`;
  if (n.status === "retried")
    return `${what}: ${how} failed (attempt ${n.attempt}, will retry): ${n.error ?? ""}`;
  return `${what}: ${how} FAILED after ${n.attempt} attempts: ${n.error ?? ""}`;
}

/** The alarm's story in order: its own events and every notification. */
export function timeline(alarm: AlarmRecord | undefined, notes: readonly StoredNotification[]) {
  const entries: Array<{ at: number; what: string; summary: string; notification?: StoredNotification }> = [];
  if (alarm) entries.push({ at: alarm.raisedAt, what: "raised", summary: alarm.message });
  for (const n of notes)
    entries.push({ at: n.at, what: "notification", summary: describeNotification(n), notification: n });
  if (alarm?.acknowledged) {
    // The record keeps who and what; the moment is the flow's acknowledgement record when there
    // is one, else the record's last change while it was acknowledged.
    const viaFlow = notes.find((n) => n.status === "acknowledged" && n.recipient === alarm.acknowledged?.by);
    const at = viaFlow?.at ?? (alarm.state === "acknowledged" ? alarm.updatedAt : alarm.raisedAt);
    entries.push({
      at,
      what: "acknowledged",
      summary: `acknowledged by ${alarm.acknowledged.by}: ${alarm.acknowledged.comment}${alarm.acknowledged.correctiveAction ? `; corrective action: ${alarm.acknowledged.correctiveAction}` : ""}`,
    });
  }
  if (alarm?.clearedAt !== undefined)
    entries.push({ at: alarm.clearedAt, what: "cleared", summary: "alarm cleared" });
  const rank = { raised: 0, notification: 1, acknowledged: 2, cleared: 3 } as Record<string, number>;
  entries.sort((a, b) => a.at - b.at || (rank[a.what] ?? 0) - (rank[b.what] ?? 0));
  return entries.map((e) => ({
    ...e,
    atIso: iso(e.at),
    ...(e.notification ? { notification: { ...e.notification, atIso: iso(e.notification.at) } } : {}),
  }));
}

export function notifyRoutes(deps: {
  store: () => NotificationStore | undefined;
  records: RecordStore;
  clock: Clock;
}): FastifyPluginAsync {
  return async (app) => {
    const store = () => {
      const s = deps.store();
      if (!s) throw error(503, "notify module not started");
      return s;
    };
    app.post(
      "/alarms/:alarmId/notifications",
      {
        schema: {
          tags: ["alarms"],
          summary: "Record one notification attempt or acknowledgement of the escalation flow",
          params,
          querystring: noQuery,
          body: recordBody,
          response: { ...errors, 200: storedRecord, 201: storedRecord },
        },
      },
      async (req, reply) => {
        const { alarmId: id } = req.params as { alarmId: string };
        const body = req.body as NotificationRecord;
        if (body.alarmId !== id)
          throw error(400, `body.alarmId: must be the alarm of the path (${id}), got ${body.alarmId}`);
        const now = deps.clock.now();
        const r = await store().record(body, now);
        if (r === "conflict") {
          const err = error(409, `recordId ${body.recordId} was already recorded with other content`);
          err.code = "CT_API_CONFLICT";
          throw err;
        }
        return reply
          .code(r === "created" ? 201 : 200)
          .send({ ...body, receivedAt: now, atIso: iso(body.at) });
      },
    );
    app.get(
      "/alarms/:alarmId/notifications",
      {
        schema: {
          tags: ["alarms"],
          summary: "Who was told about an alarm, when, on which channel, and what came of it",
          params,
          querystring: noQuery,
          response: { ...errors, 200: { type: "array", items: storedRecord } },
        },
      },
      async (req) => {
        const { alarmId: id } = req.params as { alarmId: string };
        return (await store().list(id)).map((n) => ({ ...n, atIso: iso(n.at) }));
      },
    );
    app.get(
      "/alarms/:alarmId/timeline",
      {
        schema: {
          tags: ["alarms"],
          summary: "The alarm's story: raised, every notification, acknowledged, cleared",
          params,
          querystring: noQuery,
          response: {
            ...errors,
            200: {
              type: "object",
              properties: { alarmId, entries: { type: "array", items: timelineEntry } },
            },
          },
        },
      },
      async (req) => {
        const { alarmId: id } = req.params as { alarmId: string };
        const [alarm, notes] = await Promise.all([deps.records.getAlarm(id), store().list(id)]);
        if (!alarm && notes.length === 0) throw error(404, "alarm not found");
        return { alarmId: id, entries: timeline(alarm, notes) };
      },
    );
  };
}
