/**
 * `coldtrace-report`: hands every notification record (sent, retried, failed, acknowledged)
 * to the gateway, which keeps it in the alarm's timeline:
 *
 *   POST /api/v1/alarms/{alarmId}/notifications   (idempotent by recordId)
 *
 * Records are queued durably and retried with backoff for as long as the gateway is away:
 * an inspector's "who was told, when, how" must not have holes. A record the gateway refuses
 * (4xx) is kept as rejected and logged, never dropped silently.
 */
import type { NotificationRecord } from "@coldtrace/protocol";
import { GatewayClient as Client, GatewayUnavailable } from "../gateway-client.ts";
import { backoffMs, FlowsStore } from "../store.ts";
import { gatewayFor } from "./gateway-node.ts";
import { clockOf, type Node, type NodeAPI, type NodeDef, numberProp, storePath } from "./red.ts";
import { startWorker } from "./worker.ts";

export default function register(RED: NodeAPI): void {
  RED.nodes.registerType("coldtrace-report", function (this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const clock = clockOf(RED);
    const gateway = gatewayFor(RED, this, def);
    const retryBaseMs = numberProp(def, "retryBaseMs", 2000, 1);
    const store = FlowsStore.open(storePath(RED, def.store));
    const queue = store.queue<NotificationRecord>("report");
    let reported = 0;

    const work = async () => {
      if (!gateway) return;
      for (const item of queue.due(clock.now())) {
        const r = item.body;
        try {
          const a = await gateway.request(
            "POST",
            `/api/v1/alarms/${encodeURIComponent(r.alarmId)}/notifications`,
            r,
          );
          if (a.status === 200 || a.status === 201) {
            queue.done(item.id, clock.now());
            reported++;
          } else {
            queue.reject(item.id, `${a.status}: ${Client.reason(a)}`, clock.now());
            this.error(`gateway refused notification record ${r.recordId}: ${a.status} ${Client.reason(a)}`);
          }
        } catch (err) {
          if (!(err instanceof GatewayUnavailable)) throw err;
          const now = clock.now();
          queue.retry(item.id, err.message, now + backoffMs(item.attempts + 1, retryBaseMs, 5 * 60_000), now);
          this.status({ fill: "yellow", shape: "ring", text: "gateway unreachable: records queued" });
          return; // the gateway is away: the rest waits too
        }
      }
      this.status({ fill: "green", shape: "dot", text: `${reported} records` });
    };
    const worker = startWorker(work, numberProp(def, "pollMs", 1000, 10), (err) =>
      this.error(`report: ${(err as Error).message}`),
    );

    this.on("input", (msg, _send, done) => {
      const r = msg.payload as NotificationRecord;
      if (!r || typeof r.recordId !== "string" || typeof r.alarmId !== "string") {
        done(new Error("coldtrace-report: msg.payload is not a notification record"));
        return;
      }
      queue.add(r.recordId, r, clock.now());
      worker.kick();
      done();
    });
    this.on("close", (_removed, done) => {
      void worker.stop().finally(() => {
        store.close();
        done();
      });
    });
  });
}
