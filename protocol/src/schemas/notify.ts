/**
 * A notification record: one attempt to tell a person about an alarm (sent, retried, failed)
 * or one acknowledgement, as the escalation flow (flows/escalation) reports it to the gateway's
 * REST API (POST /api/v1/alarms/{alarmId}/notifications) for the alarm's timeline. Not an MQTT
 * payload; it lives here because the flow and the gateway must agree on it.
 */
import { z } from "zod";
import { epochMs } from "./common.ts";

/** The gateway's alarm id, or the flow's key of an escalation without one (an agent's last will). */
export const escalationKey = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, "must start with a letter or digit, then A–Z a–z 0–9 . _ : -");

export const notificationStatus = z.enum(["sent", "retried", "failed", "acknowledged"]);
export type NotificationStatus = z.infer<typeof notificationStatus>;

export const notificationRecord = z
  .object({
    /** The flow's id of this record: `{notificationId}#{attempt}`, or `{alarmId}.ack.{person}`. */
    recordId: z.string().min(1).max(300),
    alarmId: escalationKey,
    /** One message to one person on one channel; its attempts share it. */
    notificationId: z.string().min(1).max(300),
    siteId: z.string().min(1).max(64),
    unitId: z.string().min(1).max(64).optional(),
    kind: z.enum(["alarm", "all_clear", "acknowledgement"]),
    /** 1-based tier; 0 for an all clear or an acknowledgement. */
    tier: z.number().int().min(0).max(10),
    /** 0-based repeat within the tier. */
    round: z.number().int().min(0),
    /** sms, email, webhook; for an acknowledgement how it came (link, sms-reply). */
    channel: z.string().min(1).max(32),
    /** Person id of the escalation configuration, and the name people read. */
    recipient: z.string().min(1).max(128),
    recipientName: z.string().min(1).max(128),
    /** As reported (SMS numbers masked, +86138****8000; webhooks by host). */
    address: z.string().max(300),
    status: notificationStatus,
    attempt: z.number().int().min(1),
    /** When the attempt was made, on the flow's clock. */
    at: epochMs,
    error: z.string().max(1000).optional(),
    providerId: z.string().max(300).optional(),
  })
  .strict();
export type NotificationRecord = z.output<typeof notificationRecord>;
