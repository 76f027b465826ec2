/**
 * The escalation state machine, pure and on an injected clock: which person is told what, on
 * which channel, and when. The Node-RED node (../node-red/escalation-node.ts) feeds it alarm
 * events, agent states, acknowledgements and clock ticks, and sends what it returns.
 *
 *   trigger ─▶ pending ──(delay, agent offline only)──▶ active ──ack──▶ acknowledged ──clear──▶ cleared
 *                 │                                        └────────────────clear──────────────▶ cleared
 *                 └──clear before anyone was told──▶ dropped (a blip: nobody to give the all clear)
 *
 * Active: tier k is notified at start + afterMinutes(k), then again every repeatMinutes, every
 * tier reached, until acknowledged or cleared. A tier marked onCall reaches whoever the site's
 * roster names at that moment. A clear sends "all clear" to everyone who was told. Late ticks
 * (a restart, a busy machine) send each tier once for the rounds missed, never a burst.
 */
import type { Channel, EscalationConfig, Locale, Person } from "./config.ts";
import { ackToken, newReplyCode } from "./links.ts";
import { type MessageKind, render, type Trigger } from "./messages.ts";
import { onCallAt } from "./oncall.ts";

const MIN = 60_000;
/** Ended escalations are kept this long, so a duplicate or late event cannot restart them. */
const KEEP_ENDED_MS = 7 * 24 * 60 * MIN;

export type EscalationStatus = "pending" | "active" | "acknowledged" | "cleared";

export interface EscalationRecord {
  key: string;
  trigger: Trigger;
  /** Clock time tiers count from (receipt, plus the agent-offline delay). */
  startsAt: number;
  status: EscalationStatus;
  replyCode: string;
  /** Per tier: messages sent so far, and the last repeat round sent. */
  tiers: Array<{ sent: number; lastRound: number } | null>;
  /** Everyone told so far, for the all clear. */
  notified: string[];
  acknowledged?: { by: string; at: number; via: string };
  clearedAt?: number;
  updatedAt: number;
}

/** One message to one person on one channel. */
export interface Dispatch {
  /** Stable id: the same message is never sent twice under different ids. */
  notificationId: string;
  key: string;
  siteId: string;
  unitId?: string;
  alarmKind: string;
  kind: MessageKind;
  tier: number;
  round: number;
  personId: string;
  personName: string;
  channel: Channel;
  address: string;
  locale: Locale;
  sms: string;
  subject: string;
  body: string;
  ackUrl?: string;
  replyCode?: string;
  at: number;
}

export interface EscalationStore {
  load(): EscalationRecord[];
  save(record: EscalationRecord): void;
  remove(key: string): void;
}

export function memoryStore(): EscalationStore & { records: Map<string, EscalationRecord> } {
  const records = new Map<string, EscalationRecord>();
  return {
    records,
    load: () => [...records.values()].map((r) => structuredClone(r)),
    save: (r) => records.set(r.key, structuredClone(r)),
    remove: (k) => records.delete(k),
  };
}

export interface EscalatorDeps {
  config: EscalationConfig;
  store: EscalationStore;
  /** Secret for signed acknowledgement links. */
  linkSecret: string;
  /** Public base URL of the flow's HTTP endpoints, e.g. https://alarms.example.cn (no trailing /). */
  publicUrl: string;
}

export class Escalator {
  readonly #deps: EscalatorDeps;
  readonly #records = new Map<string, EscalationRecord>();

  constructor(deps: EscalatorDeps) {
    this.#deps = deps;
    for (const r of deps.store.load()) this.#records.set(r.key, r);
  }

  /** Whether this trigger escalates at all (kind and tier filters of the configuration). */
  escalates(t: Trigger): boolean {
    const tr = this.#deps.config.triggers;
    if (t.source === "agent") return tr.agentOffline;
    if (!tr.kinds.includes(t.kind)) return false;
    if (t.kind === "temperature" && t.tier && !tr.temperatureTiers.includes(t.tier)) return false;
    return true;
  }

  /** A new alarm (or last will). A key seen before (a redelivery, a restart) changes nothing. */
  trigger(t: Trigger, now: number): Dispatch[] {
    if (this.#records.has(t.key) || !this.escalates(t)) return [];
    const delay = t.source === "agent" ? this.#deps.config.triggers.agentOfflineDelayMinutes * MIN : 0;
    const open = new Set([...this.#records.values()].filter((r) => !this.#ended(r)).map((r) => r.replyCode));
    const rec: EscalationRecord = {
      key: t.key,
      // A last will carries the dead session's connect time: the outage is dated from its arrival.
      trigger: t.source === "agent" ? { ...t, raisedAt: now } : t,
      startsAt: now + delay,
      status: delay > 0 ? "pending" : "active",
      replyCode: newReplyCode(open),
      tiers: [],
      notified: [],
      updatedAt: now,
    };
    this.#records.set(rec.key, rec);
    const out = this.#due(rec, now);
    this.#deps.store.save(rec);
    return out;
  }

  /** The alarm was acknowledged (here, from a message, or anywhere else through the gateway). */
  acknowledged(key: string, ack: { by: string; at: number; via: string }, now: number): boolean {
    const rec = this.#records.get(key);
    if (!rec || rec.status === "cleared" || rec.status === "acknowledged") return false;
    rec.status = "acknowledged";
    rec.acknowledged = ack;
    rec.updatedAt = now;
    this.#deps.store.save(rec);
    return true;
  }

  /** The alarm cleared (or the agent is back): all clear to everyone told, and stop. */
  cleared(key: string, at: number, now: number): Dispatch[] {
    const rec = this.#records.get(key);
    if (!rec || rec.status === "cleared") return [];
    if (rec.notified.length === 0) {
      // Never told anyone (still pending, or a kind that did not escalate): nothing to clear.
      this.#records.delete(key);
      this.#deps.store.remove(key);
      return [];
    }
    rec.status = "cleared";
    rec.clearedAt = at;
    rec.updatedAt = now;
    const out: Dispatch[] = [];
    for (const id of rec.notified) {
      const p = this.#deps.config.people.get(id);
      if (p) out.push(...this.#messages(rec, p, "all_clear", 0, 0, now));
    }
    this.#deps.store.save(rec);
    return out;
  }

  /** Advance to `now`: everything that has come due. */
  tick(now: number): Dispatch[] {
    const out: Dispatch[] = [];
    for (const rec of [...this.#records.values()]) {
      if (this.#ended(rec)) {
        if (now - rec.updatedAt > KEEP_ENDED_MS) {
          this.#records.delete(rec.key);
          this.#deps.store.remove(rec.key);
        }
        continue;
      }
      const before = JSON.stringify(rec.tiers);
      const sent = this.#due(rec, now);
      if (sent.length > 0 || before !== JSON.stringify(rec.tiers)) this.#deps.store.save(rec);
      out.push(...sent);
    }
    return out;
  }

  get(key: string): EscalationRecord | undefined {
    return this.#records.get(key);
  }

  list(): EscalationRecord[] {
    return [...this.#records.values()];
  }

  /** The open escalation a reply code belongs to. */
  byReplyCode(code: string): EscalationRecord | undefined {
    return [...this.#records.values()].find((r) => r.replyCode === code && !this.#ended(r));
  }

  /** The person an SMS reply came from. */
  personBySms(number: string): Person | undefined {
    const digits = (s: string) => s.replace(/[^\d]/g, "");
    return [...this.#deps.config.people.values()].find(
      (p) => p.sms !== undefined && digits(p.sms) === digits(number),
    );
  }

  #ended(rec: EscalationRecord): boolean {
    return rec.status === "acknowledged" || rec.status === "cleared";
  }

  #due(rec: EscalationRecord, now: number): Dispatch[] {
    if (this.#ended(rec) || now < rec.startsAt) return [];
    rec.status = "active";
    const policy = this.#deps.config.site(rec.trigger.siteId);
    const repeatMs = policy.repeatMinutes * MIN;
    const out: Dispatch[] = [];
    const toldNow = new Set<string>();
    policy.tiers.forEach((tier, i) => {
      const start = rec.startsAt + tier.afterMinutes * MIN;
      if (now < start) return;
      const round = Math.floor((now - start) / repeatMs);
      const state = rec.tiers[i] ?? null;
      if (state && state.lastRound >= round) return;
      const people = new Set(tier.people);
      if (tier.onCall) for (const id of onCallAt(policy.onCall, policy.timeZone, now)) people.add(id);
      const sent = state?.sent ?? 0;
      for (const id of people) {
        if (toldNow.has(id)) continue; // in two tiers due at once: one message
        const person = this.#deps.config.people.get(id);
        if (!person) continue;
        toldNow.add(id);
        out.push(...this.#messages(rec, person, "alarm", i + 1, sent, now));
        if (!rec.notified.includes(id)) rec.notified.push(id);
      }
      rec.tiers[i] = { sent: sent + 1, lastRound: round };
    });
    if (out.length > 0) rec.updatedAt = now;
    return out;
  }

  #messages(
    rec: EscalationRecord,
    person: Person,
    kind: MessageKind,
    tier: number,
    round: number,
    now: number,
  ): Dispatch[] {
    const { config, linkSecret, publicUrl } = this.#deps;
    const site = config.site(rec.trigger.siteId);
    const ackUrl =
      kind === "alarm"
        ? `${publicUrl}/escalation/ack/${ackToken(linkSecret, {
            key: rec.key,
            personId: person.id,
            expiresAt: now + config.links.ttlHours * 60 * MIN,
          })}`
        : undefined;
    return person.channels.map((channel) => {
      const text = render({
        trigger: rec.trigger,
        site,
        locale: person.locale,
        kind,
        tier,
        round,
        now,
        ...(ackUrl ? { ackUrl } : {}),
        ...(kind === "alarm" && channel === "sms" ? { replyCode: rec.replyCode } : {}),
      });
      const stage = kind === "alarm" ? `t${tier}.r${round}` : "clear";
      return {
        notificationId: `${rec.key}.${stage}.${person.id}.${channel}`,
        key: rec.key,
        siteId: rec.trigger.siteId,
        ...(rec.trigger.unitId ? { unitId: rec.trigger.unitId } : {}),
        alarmKind: rec.trigger.kind,
        kind,
        tier,
        round,
        personId: person.id,
        personName: person.name,
        channel,
        address: person[channel] as string,
        locale: person.locale,
        ...text,
        ...(ackUrl ? { ackUrl } : {}),
        ...(kind === "alarm" && channel === "sms" ? { replyCode: rec.replyCode } : {}),
        at: now,
      };
    });
  }
}
