/**
 * `coldtrace-notify`: sends each message from coldtrace-escalation on its channel (SMS
 * gateway, SMTP, webhook), retrying with backoff, and reports every attempt — sent, retried
 * (failed, will try again) or failed (given up) — on its output for coldtrace-report, so the
 * gateway's alarm timeline answers "who was told, when, how".
 *
 * Messages are queued durably by notificationId before the first attempt: a restart neither
 * loses one nor sends one twice.
 */
import type { NotificationRecord } from "@coldtrace/protocol";
import { Channels, maskAddress } from "../channels/channels.ts";
import type { Dispatch } from "../escalation/escalator.ts";
import { backoffMs, FlowsStore, type WorkQueue } from "../store.ts";
import { clockOf, type Node, type NodeAPI, type NodeDef, numberProp, optional, storePath } from "./red.ts";
import { startWorker } from "./worker.ts";

export default function register(RED: NodeAPI): void {
  RED.nodes.registerType("coldtrace-notify", function (this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const clock = clockOf(RED);
    const maxAttempts = numberProp(def, "maxAttempts", 3, 1);
    const retryBaseMs = numberProp(def, "retryBaseMs", 10_000, 1);
    const pollMs = numberProp(def, "pollMs", 1000, 10);
    const smsUrl = optional(def, "smsUrl");
    const smsToken = optional(def, "smsToken");
    const smtpUrl = optional(def, "smtpUrl");
    const smtpFrom = optional(def, "smtpFrom") ?? "Coldtrace <coldtrace@localhost>";
    const channels = new Channels({
      ...(smsUrl ? { sms: { url: smsUrl, ...(smsToken ? { token: smsToken } : {}) } } : {}),
      ...(smtpUrl ? { smtp: { url: smtpUrl, from: smtpFrom } } : {}),
      timeoutMs: numberProp(def, "timeoutMs", 10_000, 100),
    });
    const store = FlowsStore.open(storePath(RED, def.store));
    const queue: WorkQueue<Dispatch> = store.queue("notify");
    let sent = 0;
    let failed = 0;

    const report = (
      d: Dispatch,
      status: NotificationRecord["status"],
      attempt: number,
      extra: { error?: string; providerId?: string },
    ) => {
      const r: NotificationRecord = {
        recordId: `${d.notificationId}#${attempt}`,
        alarmId: d.key,
        notificationId: d.notificationId,
        siteId: d.siteId,
        ...(d.unitId ? { unitId: d.unitId } : {}),
        kind: d.kind,
        tier: d.tier,
        round: d.round,
        channel: d.channel,
        recipient: d.personId,
        recipientName: d.personName,
        address: maskAddress(d.channel, d.address),
        status,
        attempt,
        at: clock.now(),
        ...extra,
      };
      this.send({ topic: r.recordId, payload: r });
    };

    const work = async () => {
      try {
        for (const item of queue.due(clock.now())) {
          const d = item.body;
          const attempt = item.attempts + 1;
          try {
            const r = await channels.send(d);
            queue.done(item.id, clock.now());
            sent++;
            report(d, "sent", attempt, r.providerId ? { providerId: r.providerId } : {});
          } catch (err) {
            const error = (err as Error).message;
            const now = clock.now();
            if (attempt >= maxAttempts) {
              queue.dead(item.id, error, now);
              failed++;
              report(d, "failed", attempt, { error });
              this.warn(`${d.channel} to ${d.personId} failed after ${attempt} attempts: ${error}`);
            } else {
              queue.retry(item.id, error, now + backoffMs(attempt, retryBaseMs, 15 * 60_000), now);
              report(d, "retried", attempt, { error });
            }
          }
        }
      } finally {
        this.status({
          fill: failed > 0 ? "yellow" : "green",
          shape: "dot",
          text: `${sent} sent · ${failed} failed`,
        });
      }
    };

    this.on("input", (msg, _send, done) => {
      const d = msg.payload as Dispatch;
      if (!d || typeof d.notificationId !== "string") {
        done(new Error("coldtrace-notify: msg.payload is not a message from coldtrace-escalation"));
        return;
      }
      queue.add(d.notificationId, d, clock.now());
      worker.kick();
      done();
    });
    const worker = startWorker(work, pollMs, (err) => this.error(`notify: ${(err as Error).message}`));
    this.on("close", (_removed, done) => {
      void worker.stop().finally(() => {
        channels.close();
        store.close();
        done();
      });
    });
  });
}
