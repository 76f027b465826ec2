/**
 * `coldtrace-escalation`: the escalation state machine (../escalation/escalator.ts) as a
 * Node-RED node, with its durable state and its HTTP endpoints.
 *
 *   input  MQTT  ct/v1/+/events/alarm/+, ct/v1/+/agent/+/state     (mqtt in, QoS 1)
 *          HTTP  GET|POST /escalation/ack/:token                    (the signed link)
 *                POST     /escalation/sms/inbound                   (SMS replies, from the SMS gateway)
 *                GET      /escalation/state                         (open escalations, for operators)
 *   output 1  one message per person and channel  → coldtrace-notify
 *          2  HTTP answers                        → http response
 *          3  acknowledgement records             → coldtrace-report
 *
 * Time comes from the clock (coldtraceEscalationClock in the Node-RED settings, else the system
 * clock); an internal tick every `tickMs` sends what came due. Acknowledging an alarm of the
 * gateway goes through the gateway's API (POST /api/v1/alarms/{id}/acknowledge) as the person
 * the link or reply code belongs to; the escalation stops when the gateway has recorded it.
 */
import { isColdtraceError, type NotificationRecord } from "@coldtrace/protocol";
import { type EscalationConfig, loadEscalationConfig } from "../escalation/config.ts";
import {
  type Dispatch,
  type EscalationRecord,
  type EscalationStore,
  Escalator,
} from "../escalation/escalator.ts";
import { readEscalationInput } from "../escalation/events.ts";
import { replyCodeIn, verifyAckToken } from "../escalation/links.ts";
import { ackPage, type PageText, resultPage } from "../escalation/pages.ts";
import type { GatewayClient } from "../gateway-client.ts";
import { GatewayClient as Client, GatewayUnavailable } from "../gateway-client.ts";
import { FlowsStore } from "../store.ts";
import { gatewayOf } from "./gateway-node.ts";
import {
  clockOf,
  type Node,
  type NodeAPI,
  type NodeDef,
  type NodeMessage,
  numberProp,
  optional,
  required,
  storePath,
} from "./red.ts";

function sqliteEscalations(store: FlowsStore): EscalationStore {
  return {
    load: () =>
      (store.db.prepare("SELECT record FROM escalations").all() as Array<{ record: string }>).map(
        (r) => JSON.parse(r.record) as EscalationRecord,
      ),
    save: (r) =>
      void store.db
        .prepare(
          "INSERT INTO escalations (key, record, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at",
        )
        .run(r.key, JSON.stringify(r), r.updatedAt),
    remove: (k) => void store.db.prepare("DELETE FROM escalations WHERE key = ?").run(k),
  };
}

function bearer(msg: NodeMessage): string | undefined {
  const h = msg.req?.headers.authorization;
  return h?.startsWith("Bearer ") ? h.slice(7) : undefined;
}

export default function register(RED: NodeAPI): void {
  RED.nodes.registerType(
    "coldtrace-escalation",
    function (this: Node, def: NodeDef) {
      RED.nodes.createNode(this, def);
      const clock = clockOf(RED);
      let escalator: Escalator | undefined;
      let config: EscalationConfig | undefined;
      let gateway: GatewayClient | undefined;
      let store: FlowsStore | undefined;
      let inboundToken: string | undefined;
      let stateToken: string | undefined;
      let evaluatedAt = 0;
      let sent = 0;
      try {
        config = loadEscalationConfig(required(def, "config", "COLDTRACE_ESCALATION_CONFIG"));
        gateway = gatewayOf(RED, def);
        store = FlowsStore.open(storePath(RED, def.store));
        const publicUrl = required(def, "publicUrl", "COLDTRACE_ESCALATION_PUBLIC_URL").replace(/\/+$/, "");
        new URL(publicUrl);
        const linkSecret = required(def, "linkSecret", "COLDTRACE_ESCALATION_LINK_SECRET");
        if (linkSecret.length < 16)
          throw new Error("linkSecret must be at least 16 characters (COLDTRACE_ESCALATION_LINK_SECRET)");
        inboundToken = optional(def, "smsInboundToken");
        stateToken = optional(def, "stateToken");
        escalator = new Escalator({ config, store: sqliteEscalations(store), linkSecret, publicUrl });
      } catch (err) {
        // A configuration that could leave an alarm unheard: refuse, and say every problem.
        const message = (err as Error).message;
        this.error(`escalation is not running: ${message}`);
        this.status({
          fill: "red",
          shape: "ring",
          text: isColdtraceError(err) ? err.code : "not configured",
        });
      }

      const showStatus = () => {
        const open =
          escalator?.list().filter((r) => r.status === "active" || r.status === "pending").length ?? 0;
        this.status({
          fill: open > 0 ? "red" : "green",
          shape: "dot",
          text: `${open} open · ${sent} messages`,
        });
      };
      if (escalator) showStatus();

      const dispatch = (out: Dispatch[]) => {
        if (out.length === 0) return;
        sent += out.length;
        this.send([out.map((d) => ({ topic: d.notificationId, payload: d })), null, null]);
        showStatus();
      };

      const record = (rec: EscalationRecord, personId: string, via: string, at: number) => {
        const person = config?.people.get(personId);
        const r: NotificationRecord = {
          recordId: `${rec.key}.ack.${personId}`,
          alarmId: rec.key,
          notificationId: `${rec.key}.ack.${personId}`,
          siteId: rec.trigger.siteId,
          ...(rec.trigger.unitId ? { unitId: rec.trigger.unitId } : {}),
          kind: "acknowledgement",
          tier: 0,
          round: 0,
          channel: via,
          recipient: personId,
          recipientName: person?.name ?? personId,
          address: "",
          status: "acknowledged",
          attempt: 1,
          at,
        };
        this.send([null, null, { topic: r.recordId, payload: r }]);
      };

      /** Acknowledge as `personId`; the gateway records it for its alarms. */
      const acknowledge = async (
        rec: EscalationRecord,
        personId: string,
        via: "link" | "sms-reply",
        comment: string,
      ): Promise<{ ok: true } | { ok: false; status: number; why: string }> => {
        const now = clock.now();
        const person = config?.people.get(personId);
        const how = via === "link" ? "the link in the alarm message" : "an SMS reply";
        const text = `Acknowledged by ${person?.name ?? personId} (${personId}) via ${how}${comment ? `: ${comment}` : ""}`;
        if (rec.trigger.source === "alarm" && gateway) {
          const a = await gateway.request(
            "POST",
            `/api/v1/alarms/${encodeURIComponent(rec.key)}/acknowledge`,
            {
              by: personId,
              comment: text.slice(0, 2000),
              correctiveAction: "",
            },
          );
          if (a.status !== 200) return { ok: false, status: a.status, why: Client.reason(a) };
        }
        escalator?.acknowledged(rec.key, { by: personId, at: now, via }, now);
        record(rec, personId, via, now);
        showStatus();
        return { ok: true };
      };

      const reply = (msg: NodeMessage, statusCode: number, payload: unknown, type = "application/json") => {
        this.send([
          null,
          { ...msg, statusCode, headers: { "content-type": `${type}; charset=utf-8` }, payload },
          null,
        ]);
      };

      const onHttp = async (msg: NodeMessage) => {
        const req = msg.req as NodeMessage["req"] & { method?: string; path?: string };
        const path = req?.path ?? "";
        if (!escalator || !config)
          return reply(msg, 503, { error: "escalation is not running: see the Node-RED log" });
        const now = clock.now();
        if (/\/escalation\/state$/.test(path)) {
          if (!stateToken || bearer(msg) !== stateToken)
            return reply(msg, 401, { error: "missing or wrong bearer token" });
          return reply(msg, 200, {
            now,
            evaluatedAt,
            escalations: escalator.list().map((r) => ({
              key: r.key,
              status: r.status,
              siteId: r.trigger.siteId,
              unitId: r.trigger.unitId ?? null,
              agentId: r.trigger.agentId ?? null,
              kind: r.trigger.kind,
              startsAt: r.startsAt,
              tiers: r.tiers,
              notified: r.notified,
              acknowledged: r.acknowledged ?? null,
              clearedAt: r.clearedAt ?? null,
            })),
          });
        }
        if (/\/escalation\/sms\/inbound$/.test(path)) {
          if (!inboundToken || bearer(msg) !== inboundToken)
            return reply(msg, 401, { error: "missing or wrong bearer token" });
          const body = (msg.payload ?? {}) as { from?: unknown; text?: unknown };
          if (typeof body.from !== "string" || typeof body.text !== "string") {
            return reply(msg, 400, { error: "body: expected { from: string, text: string }" });
          }
          const person = escalator.personBySms(body.from);
          const code = replyCodeIn(body.text);
          const rec = code ? escalator.byReplyCode(code) : undefined;
          const zh = person?.locale !== "en";
          if (!person || !rec?.notified.includes(person.id)) {
            return reply(msg, 200, {
              ok: false,
              reply: zh
                ? "未找到对应的待确认告警，请核对确认码。"
                : "No open alarm matches this code for your number.",
            });
          }
          const r = await acknowledge(rec, person.id, "sms-reply", "");
          return reply(msg, 200, {
            ok: r.ok,
            reply: r.ok
              ? zh
                ? `已确认告警 ${rec.key}，后续提醒已停止。`
                : `Alarm ${rec.key} acknowledged; reminders stopped.`
              : `${zh ? "确认未成功" : "Not acknowledged"}: ${r.why}`,
          });
        }
        const token = req?.params?.token ?? "";
        const check = verifyAckToken(
          required(def, "linkSecret", "COLDTRACE_ESCALATION_LINK_SECRET"),
          token,
          now,
        );
        if (!check.ok) {
          const t: PageText = {
            title: "Link not valid / 链接无效",
            text:
              check.reason === "expired"
                ? "This link has expired. / 链接已过期。"
                : "This link is not valid. / 链接无效。",
          };
          return reply(msg, check.reason === "expired" ? 410 : 400, resultPage(t), "text/html");
        }
        const rec = escalator.get(check.claim.key);
        const person = config.people.get(check.claim.personId);
        if (!rec || !person)
          return reply(
            msg,
            404,
            resultPage({ title: "Not found / 未找到", text: check.claim.key }),
            "text/html",
          );
        const site = config.site(rec.trigger.siteId);
        if (req?.method === "POST") {
          if (rec.status === "acknowledged" || rec.status === "cleared") {
            return reply(msg, 200, ackPage({ rec, person, site, now, done: true }), "text/html");
          }
          const comment = String((msg.payload as { comment?: unknown } | undefined)?.comment ?? "").slice(
            0,
            1000,
          );
          const r = await acknowledge(rec, person.id, "link", comment);
          if (!r.ok) {
            return reply(
              msg,
              r.status === 404 || r.status === 409 ? 409 : 502,
              resultPage({ title: "Not acknowledged / 确认未成功", text: r.why }),
              "text/html",
            );
          }
          return reply(
            msg,
            200,
            ackPage({ rec: escalator.get(rec.key) ?? rec, person, site, now, done: true }),
            "text/html",
          );
        }
        return reply(
          msg,
          200,
          ackPage({
            rec,
            person,
            site,
            now,
            done: rec.status === "acknowledged" || rec.status === "cleared",
          }),
          "text/html",
        );
      };

      const onMqtt = (msg: NodeMessage) => {
        if (!escalator) return;
        const now = clock.now();
        const input = readEscalationInput(String(msg.topic), msg.payload as Buffer | string);
        switch (input.type) {
          case "raised":
            dispatch(escalator.trigger(input.trigger, now));
            break;
          case "acknowledged":
            // Acknowledged somewhere else (the console, the API): stop.
            escalator.acknowledged(input.key, { by: input.by, at: input.at, via: "gateway" }, now);
            break;
          case "cleared":
            dispatch(escalator.cleared(input.key, input.at, now));
            break;
          case "agent-online":
            for (const r of escalator.list()) {
              if (
                r.trigger.source === "agent" &&
                r.trigger.siteId === input.siteId &&
                r.trigger.agentId === input.agentId
              ) {
                dispatch(escalator.cleared(r.key, now, now));
              }
            }
            break;
          case "ignored":
            break;
        }
        showStatus();
      };

      this.on("input", async (msg, _send, done) => {
        try {
          if (msg.req) await onHttp(msg);
          else onMqtt(msg);
          done();
        } catch (err) {
          if (err instanceof GatewayUnavailable && msg.req) {
            reply(
              msg,
              503,
              resultPage({
                title: "Gateway unreachable / 网关不可达",
                text: "Try again in a minute, or call the on-call QA. / 请稍后重试或致电值班 QA。",
              }),
              "text/html",
            );
            done();
            return;
          }
          // A bad message is logged and dropped; the flow goes on (never crash on input).
          if (msg.req) reply(msg, 500, { error: "internal error" });
          done(err as Error);
        }
      });

      const tickMs = numberProp(def, "tickMs", 5000, 10);
      const timer = setInterval(() => {
        if (!escalator) return;
        const now = clock.now();
        try {
          dispatch(escalator.tick(now));
          evaluatedAt = now;
        } catch (err) {
          this.error(`escalation tick failed: ${(err as Error).message}`);
        }
      }, tickMs);
      this.on("close", (_removed, done) => {
        clearInterval(timer);
        store?.close();
        done();
      });
    },
    { settings: { coldtraceEscalationClock: { value: undefined, exportable: false } } },
  );
}
