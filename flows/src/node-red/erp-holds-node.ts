/**
 * `coldtrace-erp-holds`: lot events and eligibility changes → the ERP's hold / unhold API.
 *
 *   input  MQTT  ct/v1/+/events/lot/+, ct/v1/+/eligibility/+      (mqtt in, QoS 1, persistent session)
 *          HTTP  GET  /erp/dead-letters                           (dead and waiting calls)
 *                POST /erp/dead-letters/:id/replay                (send a dead call again)
 *                GET  /erp/holds/state                            (counters, for operators and tests)
 *   output 1  HTTP answers → http response
 *
 * Each call is queued durably under its eventId before anything is sent (../store.ts): the
 * broker redelivering an event, a retained state arriving again after a restart, or a restart
 * in the middle of retries never makes a second call. Calls for one lot go strictly in order.
 * 2xx (and 409, "already so") is done; 5xx or no answer is retried with exponential backoff;
 * after `maxAttempts`, or at once on another 4xx (the mapping or the data is wrong), the call
 * goes to the dead-letter list, and the lot's later calls wait behind it until it is replayed.
 */
import {
  callForEligibility,
  callForLotEvent,
  type HoldCall,
  type HoldsMapping,
  loadHoldsMapping,
  readHoldInput,
  requestBody,
  type SeenEligibility,
} from "../erp/holds.ts";
import { backoffMs, FlowsStore } from "../store.ts";
import {
  type Node,
  type NodeAPI,
  type NodeDef,
  type NodeMessage,
  numberProp,
  optional,
  required,
  storePath,
} from "./red.ts";
import { startWorker } from "./worker.ts";

export default function register(RED: NodeAPI): void {
  RED.nodes.registerType("coldtrace-erp-holds", function (this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const now = () => Date.now();
    let mapping: HoldsMapping | undefined;
    try {
      mapping = loadHoldsMapping(required(def, "mapping", "COLDTRACE_ERP_HOLDS_MAPPING"));
    } catch (err) {
      this.error(`ERP holds are not running: ${(err as Error).message}`);
      this.status({ fill: "red", shape: "ring", text: "mapping invalid" });
    }
    const token = optional(def, "token");
    const adminToken = optional(def, "adminToken");
    const maxAttempts = numberProp(def, "maxAttempts", 8, 1);
    const retryBaseMs = numberProp(def, "retryBaseMs", 5000, 1);
    const timeoutMs = numberProp(def, "timeoutMs", 15_000, 100);
    const store = FlowsStore.open(storePath(RED, def.store));
    const queue = store.queue<HoldCall>("erp-holds");
    const counters = { lotEvents: 0, eligibility: 0, calls: 0, done: 0, retried: 0, dead: 0 };

    const showStatus = () => {
      const dead = queue.list("dead").length;
      this.status({
        fill: dead > 0 ? "red" : "green",
        shape: "dot",
        text: `${counters.done} sent · ${dead} dead`,
      });
    };

    const call = async (c: HoldCall): Promise<{ ok: boolean; retry: boolean; error?: string }> => {
      const m = mapping!;
      const ep = c.action === "hold" ? m.hold : m.unhold;
      let res: Response;
      try {
        res = await fetch(ep.url, {
          method: ep.method,
          headers: {
            "content-type": "application/json",
            "idempotency-key": c.eventId,
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
          body: JSON.stringify(requestBody(m, c)),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } };
        return { ok: false, retry: true, error: e.cause?.code ?? e.message };
      }
      const text = (await res.text()).slice(0, 300);
      if (res.ok || res.status === 409) return { ok: true, retry: false };
      return {
        ok: false,
        retry: res.status >= 500 || res.status === 429 || res.status === 408,
        error: `${res.status}${text ? `: ${text}` : ""}`,
      };
    };

    const work = async () => {
      if (!mapping) return;
      for (const item of queue.due(now())) {
        counters.calls++;
        const r = await call(item.body);
        const t = now();
        const attempt = item.attempts + 1;
        if (r.ok) {
          queue.done(item.id, t);
          counters.done++;
        } else if (!r.retry || attempt >= maxAttempts) {
          queue.dead(item.id, `${r.error} (attempt ${attempt})`, t);
          counters.dead++;
          this.warn(
            `ERP ${item.body.action} for ${item.body.lotId} at ${item.body.siteId} dead-lettered: ${r.error}`,
          );
        } else {
          queue.retry(
            item.id,
            `${r.error} (attempt ${attempt})`,
            t + backoffMs(attempt, retryBaseMs, 10 * 60_000),
            t,
          );
          counters.retried++;
        }
      }
      showStatus();
    };
    const worker = startWorker(work, numberProp(def, "pollMs", 1000, 10), (err) =>
      this.error(`ERP holds: ${(err as Error).message}`),
    );

    const enqueue = (c: HoldCall | undefined) => {
      if (!c) return;
      queue.add(c.eventId, c, now(), `${c.siteId}/${c.lotId}`);
      worker.kick();
    };

    const reply = (msg: NodeMessage, statusCode: number, payload: unknown) =>
      this.send({
        ...msg,
        statusCode,
        headers: { "content-type": "application/json; charset=utf-8" },
        payload,
      });

    const onHttp = (msg: NodeMessage) => {
      const req = msg.req as NodeMessage["req"] & { method?: string; path?: string };
      const auth = req?.headers.authorization;
      if (!adminToken || auth !== `Bearer ${adminToken}`)
        return reply(msg, 401, { error: "missing or wrong bearer token" });
      const path = req?.path ?? "";
      if (/\/erp\/holds\/state$/.test(path))
        return reply(msg, 200, {
          ...counters,
          pending: queue.list("pending").length,
          dead: queue.list("dead").length,
        });
      if (req?.method === "POST") {
        const id = req.params?.id ?? "";
        if (!queue.replay(id, now()))
          return reply(msg, 404, { error: `no dead-lettered call ${JSON.stringify(id)}` });
        worker.kick();
        return reply(msg, 202, { replayed: id });
      }
      return reply(
        msg,
        200,
        queue.list("dead").map((d) => ({
          eventId: d.id,
          action: d.body.action,
          siteId: d.body.siteId,
          lotId: d.body.lotId,
          attempts: d.attempts,
          lastError: d.lastError,
          since: new Date(d.createdAt).toISOString(),
          waitingBehind: queue.blockedBehind(d.id),
        })),
      );
    };

    this.on("input", (msg, _send, done) => {
      try {
        if (msg.req) onHttp(msg);
        else if (mapping) {
          const input = readHoldInput(String(msg.topic), msg.payload as Buffer | string);
          if (input.type === "lot") {
            counters.lotEvents++;
            enqueue(callForLotEvent(mapping, input.event));
          } else if (input.type === "eligibility") {
            counters.eligibility++;
            const key = `eligibility:${input.state.siteId}:${input.state.lotId}`;
            const prev = store.get<SeenEligibility & { lotSeq: number; updatedAt: number }>(key);
            // A state older than the one we have is stale (docs/protocol.md#eligibility-retained).
            if (prev && (input.state.lotSeq < prev.lotSeq || input.state.updatedAt < prev.updatedAt)) {
              done();
              return;
            }
            enqueue(callForEligibility(mapping, input.state, prev));
            store.set(key, {
              eligible: input.state.eligible,
              status: input.state.status,
              lotSeq: input.state.lotSeq,
              updatedAt: input.state.updatedAt,
            });
          }
        }
        done();
      } catch (err) {
        if (msg.req) reply(msg, 500, { error: "internal error" });
        done(err as Error);
      }
    });
    this.on("close", (_removed, done) => {
      void worker.stop().finally(() => {
        store.close();
        done();
      });
    });
  });
}
