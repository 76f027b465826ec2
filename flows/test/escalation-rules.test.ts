/**
 * The escalation's rules without Node-RED: the configuration check at start (at least two
 * recipients per tier at every hour of the week), the on-call roster, the state machine on a
 * test clock, the messages in both languages, the signed links and reply codes.
 */
import { ColdtraceError } from "@coldtrace/protocol";
import { describe, expect, it } from "vitest";
import { type EscalationConfigInput, parseEscalationConfig } from "../src/escalation/config.ts";
import { type Dispatch, Escalator, memoryStore } from "../src/escalation/escalator.ts";
import { agentOfflineKey, readEscalationInput } from "../src/escalation/events.ts";
import { ackToken, replyCodeIn, verifyAckToken } from "../src/escalation/links.ts";
import { render, type Trigger } from "../src/escalation/messages.ts";
import { onCallAt } from "../src/escalation/oncall.ts";

const MIN = 60_000;
// Tuesday 24 November 2026 03:00 in Shanghai.
const T0 = Date.UTC(2026, 10, 23, 19, 0, 0);
const SECRET = "a-secret-of-sixteen+";

const people = {
  a: { name: "王丽", sms: "+8613800000001", email: "a@x.test" },
  b: { name: "Zhao Min", locale: "en", sms: "+8613800000002" },
  c: { name: "陈杰", sms: "+8613800000003" },
  d: { name: "刘洋", sms: "+8613800000004" },
  e: { name: "李娜", email: "e@x.test" },
  f: { name: "吴强", sms: "+8613800000006" },
} as const;

function config(over: Partial<EscalationConfigInput> = {}): EscalationConfigInput {
  return {
    people,
    defaults: {
      tiers: [
        { afterMinutes: 0, onCall: true },
        { afterMinutes: 15, people: ["e", "f"] },
      ],
      repeatMinutes: 10,
      onCall: [
        { from: "08:00", to: "20:00", people: ["c", "d"] },
        { from: "20:00", to: "08:00", people: ["a", "b"] },
      ],
    },
    ...over,
  };
}

const problems = (input: unknown): string[] => {
  try {
    parseEscalationConfig(input, "escalation.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(ColdtraceError);
    expect((err as ColdtraceError).code).toBe("CT_CFG_INVALID");
    return ((err as ColdtraceError).context.issues as Array<{ path: string; message: string }>).map(
      (i) => `${i.path}: ${i.message}`,
    );
  }
  return [];
};

describe("escalation configuration", () => {
  it("accepts a roster that reaches two people in every tier at every hour", () => {
    expect(problems(config())).toEqual([]);
  });

  it("refuses, with every problem by path, a tier that reaches fewer than two people at some hour", () => {
    const c = config({
      defaults: {
        tiers: [
          { afterMinutes: 0, onCall: true },
          { afterMinutes: 10, people: ["e"] },
          { afterMinutes: 5, people: ["e", "nobody"] },
        ],
        repeatMinutes: 10,
        // Saturday daytime has one person only; Sunday daytime nobody.
        onCall: [
          { days: ["mon", "tue", "wed", "thu", "fri"], from: "08:00", to: "20:00", people: ["c", "d"] },
          { days: ["sat"], from: "08:00", to: "20:00", people: ["c"] },
          { from: "20:00", to: "08:00", people: ["a", "b"] },
        ],
      },
      people: { ...people, g: { name: "No address" } } as never,
    });
    expect(problems(c)).toEqual([
      "people.g: has no sms, email or webhook address",
      "defaults.tiers[0]: needs at least 2 recipients, has 0 on sun 08:00 (Asia/Shanghai)",
      "defaults.tiers[1]: needs at least 2 recipients, has 1",
      'defaults.tiers[2].people: unknown person "nobody"',
      "defaults.tiers[2].afterMinutes: must be later than tier 2's (10)",
    ]);
  });

  it("names a bad field, a bad time and a channel without an address", () => {
    expect(
      problems({
        ...config(),
        people: { ...people, x: { name: "X", sms: "13800000000", channels: ["email"] } },
        sites: {
          "store-1": { timeZone: "Mars/Base", onCall: [{ from: "25:00", to: "08:00", people: ["a"] }] },
        },
      }),
    ).toEqual(
      expect.arrayContaining([
        'people.x.sms: must be an E.164 number such as +8613800138000, got "13800000000"',
        'sites.store-1.onCall[0].from: must be "HH:MM" (24 h), got "25:00"',
      ]),
    );
    expect(
      problems({
        ...config(),
        people: { ...people, x: { name: "X", sms: "+8613800000009", channels: ["email"] } },
      }),
    ).toEqual(["people.x.channels: email is listed but x has no email address"]);
    expect(problems({ ...config(), sites: { s: { timeZone: "Mars/Base" } } })).toEqual([
      'sites.s.timeZone: unknown time zone "Mars/Base"',
    ]);
  });

  it("lets a site override the defaults and lets the minimum be configured", () => {
    const c = parseEscalationConfig({
      ...config(),
      minRecipientsPerTier: 1,
      sites: {
        "store-1": {
          name: "南京路店",
          units: { "fridge-2": { "zh-CN": "冷藏柜2", en: "fridge 2" } },
          tiers: [{ afterMinutes: 0, people: ["e"] }],
        },
      },
    });
    expect(c.site("store-1")).toMatchObject({
      name: { "zh-CN": "南京路店", en: "南京路店" },
      tiers: [{ afterMinutes: 0, people: ["e"] }],
      repeatMinutes: 10,
    });
    expect(c.site("store-9").tiers).toHaveLength(2);
  });
});

describe("on-call roster", () => {
  const roster = parseEscalationConfig(config()).site("x").onCall;
  it("follows the site's local time, overnight shifts included", () => {
    expect(onCallAt(roster, "Asia/Shanghai", T0)).toEqual(["a", "b"]); // Tue 03:00
    expect(onCallAt(roster, "Asia/Shanghai", T0 + 5 * 60 * MIN)).toEqual(["c", "d"]); // Tue 08:00
    expect(onCallAt(roster, "Asia/Shanghai", T0 + 17 * 60 * MIN - 1)).toEqual(["c", "d"]); // Tue 19:59:59
    expect(onCallAt(roster, "Asia/Shanghai", T0 + 17 * 60 * MIN)).toEqual(["a", "b"]); // Tue 20:00
    // The same instant is daytime in Berlin (Mon 20:00 → night shift there too, but 8 h apart).
    expect(onCallAt(roster, "Europe/Berlin", T0 - 10 * 60 * MIN)).toEqual(["c", "d"]); // Mon 10:00 Berlin
  });
  it("gives a shift past midnight to the day it starts on", () => {
    const fridayNight = [{ days: ["fri" as const], from: "22:00", to: "06:00", people: ["a"] }];
    // Sat 02:00 Shanghai belongs to Friday's night shift; Tue 02:00 does not.
    const sat2 = Date.UTC(2026, 10, 27, 18, 0, 0);
    expect(onCallAt(fridayNight, "Asia/Shanghai", sat2)).toEqual(["a"]);
    expect(onCallAt(fridayNight, "Asia/Shanghai", T0 - MIN * 60)).toEqual([]);
  });
});

const alarm = (over: Partial<Trigger> = {}): Trigger => ({
  key: "s-1-fridge-2.temp.h.action.1",
  source: "alarm",
  siteId: "s-1",
  unitId: "fridge-2",
  probeId: "fridge-2-top",
  kind: "temperature",
  tier: "action",
  side: "high",
  valueC: 12.6,
  limitC: 12,
  raisedAt: T0 - 5 * MIN,
  message: "fridge-2: temperature above the action limit 12 °C for 5 min or more",
  ...over,
});

function escalator() {
  const store = memoryStore();
  const cfg = parseEscalationConfig({
    ...config(),
    sites: {
      "s-1": {
        name: { "zh-CN": "南京路店", en: "Nanjing Rd" },
        units: { "fridge-2": { "zh-CN": "冷藏柜2号", en: "fridge 2" } },
      },
    },
    triggers: { temperatureTiers: ["action"], agentOfflineDelayMinutes: 3 },
  });
  const deps = { config: cfg, store, linkSecret: SECRET, publicUrl: "https://alarms.test" };
  return { e: new Escalator(deps), store, deps };
}
const who = (ds: Dispatch[]) => ds.map((d) => `${d.personId}:${d.channel}:t${d.tier}.r${d.round}`);

describe("escalation state machine", () => {
  it("notifies tier 1 at once, tier 2 at 15 min, repeats every 10 min, and sends each round once however late the tick", () => {
    const { e } = escalator();
    expect(who(e.trigger(alarm(), T0))).toEqual(["a:sms:t1.r0", "a:email:t1.r0", "b:sms:t1.r0"]);
    expect(e.trigger(alarm(), T0 + MIN)).toEqual([]); // redelivered: nothing
    expect(e.tick(T0 + 9 * MIN)).toEqual([]);
    expect(who(e.tick(T0 + 10 * MIN))).toEqual(["a:sms:t1.r1", "a:email:t1.r1", "b:sms:t1.r1"]);
    expect(e.tick(T0 + 10 * MIN)).toEqual([]);
    expect(who(e.tick(T0 + 15 * MIN))).toEqual(["e:email:t2.r0", "f:sms:t2.r0"]);
    // A tick 40 minutes late (a restart): one message per tier, not one per missed round.
    expect(who(e.tick(T0 + 55 * MIN))).toEqual([
      "a:sms:t1.r2",
      "a:email:t1.r2",
      "b:sms:t1.r2",
      "e:email:t2.r1",
      "f:sms:t2.r1",
    ]);
  });

  it("reaches whoever is on call when each message goes out", () => {
    const { e } = escalator();
    e.trigger(alarm(), T0 + 4 * 60 * MIN + 55 * MIN); // Tue 07:55: night shift
    expect(who(e.tick(T0 + 5 * 60 * MIN + 5 * MIN))).toEqual(["c:sms:t1.r1", "d:sms:t1.r1"]); // 08:05: day shift
  });

  it("stops on acknowledge, and still gives the all clear to everyone told when the alarm clears", () => {
    const { e } = escalator();
    e.trigger(alarm(), T0);
    e.tick(T0 + 15 * MIN);
    expect(e.acknowledged(alarm().key, { by: "a", at: T0 + 16 * MIN, via: "link" }, T0 + 16 * MIN)).toBe(
      true,
    );
    expect(e.tick(T0 + 60 * MIN)).toEqual([]);
    const clear = e.cleared(alarm().key, T0 + 61 * MIN, T0 + 61 * MIN);
    expect(who(clear)).toEqual([
      "a:sms:t0.r0",
      "a:email:t0.r0",
      "b:sms:t0.r0",
      "e:email:t0.r0",
      "f:sms:t0.r0",
    ]);
    expect(clear.every((d) => d.kind === "all_clear" && d.ackUrl === undefined)).toBe(true);
    expect(e.cleared(alarm().key, T0 + 62 * MIN, T0 + 62 * MIN)).toEqual([]);
    expect(e.trigger(alarm(), T0 + 63 * MIN)).toEqual([]); // a late duplicate cannot restart it
  });

  it("escalates only the configured kinds and tiers", () => {
    const { e } = escalator();
    expect(e.trigger(alarm({ key: "k-alert", tier: "alert" }), T0)).toEqual([]);
    expect(e.trigger(alarm({ key: "k-drift", kind: "probe_drift" }), T0)).toEqual([]);
    // A system alarm kind newer than this contract version escalates when listed (the default list).
    expect(
      who(e.trigger(alarm({ key: "k-outbox", kind: "outbox_stuck", tier: undefined, side: undefined }), T0)),
    ).toHaveLength(3);
  });

  it("waits the agent-offline delay: a reconnect before it is a blip, nobody is told", () => {
    const { e } = escalator();
    const lost = {
      ...alarm(),
      key: agentOfflineKey("s-1", "pi-1", "s-a"),
      source: "agent" as const,
      kind: "agent_offline",
      agentId: "pi-1",
    };
    expect(e.trigger(lost, T0)).toEqual([]);
    expect(e.get(lost.key)?.status).toBe("pending");
    expect(e.cleared(lost.key, T0 + MIN, T0 + MIN)).toEqual([]);
    expect(e.get(lost.key)).toBeUndefined();
    const again = { ...lost, key: agentOfflineKey("s-1", "pi-1", "s-b") };
    e.trigger(again, T0);
    expect(e.tick(T0 + 2 * MIN)).toEqual([]);
    const told = e.tick(T0 + 3 * MIN);
    expect(who(told)).toEqual(["a:sms:t1.r0", "a:email:t1.r0", "b:sms:t1.r0"]);
    expect(told[2]!.sms).toContain("monitoring agent pi-1 offline (power or network lost), since");
  });

  it("survives a restart: state comes back from the store, nothing is sent twice", () => {
    const { e, deps } = escalator();
    e.trigger(alarm(), T0);
    e.tick(T0 + 10 * MIN);
    const again = new Escalator(deps);
    expect(again.trigger(alarm(), T0 + 11 * MIN)).toEqual([]);
    expect(again.tick(T0 + 12 * MIN)).toEqual([]);
    expect(who(again.tick(T0 + 15 * MIN))).toEqual(["e:email:t2.r0", "f:sms:t2.r0"]);
  });
});

describe("messages", () => {
  const site = parseEscalationConfig({
    ...config(),
    sites: {
      "s-1": {
        name: { "zh-CN": "南京路店", en: "Nanjing Rd" },
        units: { "fridge-2": { "zh-CN": "冷藏柜2号", en: "fridge 2" } },
      },
    },
  }).site("s-1");
  it("name the store, the unit, the temperature, the limit and how long, in zh-CN and en", () => {
    const base = {
      trigger: alarm(),
      site,
      kind: "alarm" as const,
      tier: 1,
      round: 0,
      now: T0 + 20 * MIN,
      ackUrl: "https://a.test/x",
      replyCode: "4821",
    };
    expect(render({ ...base, locale: "zh-CN" }).sms).toBe(
      "【冷链告警】南京路店 冷藏柜2号：温度 12.6 °C，高于行动限 12 °C，自 11/24 02:55 起已 25 分钟。回复 4821 确认；确认：https://a.test/x",
    );
    expect(render({ ...base, locale: "en" }).sms).toBe(
      "[Coldtrace ALARM] Nanjing Rd fridge 2: 12.6 °C, above the action limit 12 °C, since Nov 24, 02:55 (25 min). Reply 4821 to acknowledge or open https://a.test/x",
    );
    expect(render({ ...base, locale: "en", tier: 2, now: T0 + 95 * MIN }).sms).toContain(
      "Escalated to tier 2: ",
    );
    expect(render({ ...base, locale: "zh-CN", round: 2, now: T0 + 95 * MIN }).sms).toContain("第3次提醒 ");
    expect(render({ ...base, locale: "zh-CN", now: T0 + 95 * MIN }).sms).toContain("1 小时 40 分钟");
    const clear = render({ ...base, kind: "all_clear", locale: "zh-CN" });
    expect(clear.sms).toBe("【冷链告警解除】南京路店 冷藏柜2号：已恢复正常，告警持续 25 分钟。");
    expect(clear.body).toContain("告警编号: s-1-fridge-2.temp.h.action.1");
  });
});

describe("acknowledgement links and reply codes", () => {
  it("verifies its own links, and refuses forged, altered and expired ones", () => {
    const token = ackToken(SECRET, { key: "k", personId: "a", expiresAt: T0 + MIN });
    expect(verifyAckToken(SECRET, token, T0)).toEqual({
      ok: true,
      claim: { key: "k", personId: "a", expiresAt: T0 + MIN },
    });
    expect(verifyAckToken(SECRET, token, T0 + MIN)).toEqual({ ok: false, reason: "expired" });
    expect(verifyAckToken("another-secret-16+", token, T0)).toEqual({ ok: false, reason: "signature" });
    const [payload, sig] = token.split(".");
    const other = Buffer.from(JSON.stringify({ k: "k", p: "b", e: T0 + MIN })).toString("base64url");
    expect(verifyAckToken(SECRET, `${other}.${sig}`, T0)).toEqual({ ok: false, reason: "signature" });
    expect(verifyAckToken(SECRET, `${payload}`, T0)).toEqual({ ok: false, reason: "malformed" });
  });
  it("finds exactly one 4-digit code in a reply", () => {
    expect(replyCodeIn("确认 4821")).toBe("4821");
    expect(replyCodeIn("ack4821")).toBe("4821");
    expect(replyCodeIn("4821 4822")).toBeUndefined();
    expect(replyCodeIn("48210")).toBeUndefined();
    expect(replyCodeIn("ok")).toBeUndefined();
  });
});

describe("escalation input from the contract", () => {
  it("reads alarm events of any kind, last wills, and refuses bad payloads naming the field", () => {
    const raised = {
      v: 1,
      eventId: "alarm-a-1-raised",
      siteId: "s-1",
      at: T0,
      type: "alarm.raised",
      alarmId: "a-1",
      kind: "audit_chain_broken",
      unitId: "gw",
      raisedAt: T0,
      message: "audit chain broken at record 118",
    };
    expect(readEscalationInput("ct/v1/s-1/events/alarm/gw", JSON.stringify(raised))).toMatchObject({
      type: "raised",
      trigger: { key: "a-1", kind: "audit_chain_broken", source: "alarm" },
    });
    expect(() =>
      readEscalationInput("ct/v1/s-1/events/alarm/gw", JSON.stringify({ ...raised, raisedAt: "x" })),
    ).toThrow(/raisedAt: expected number/);
    const will = { v: 1, agentId: "pi-1", state: "offline", sessionId: "s-a", at: T0 };
    expect(readEscalationInput("ct/v1/s-1/agent/pi-1/state", JSON.stringify(will))).toMatchObject({
      type: "raised",
      trigger: { key: agentOfflineKey("s-1", "pi-1", "s-a"), kind: "agent_offline", agentId: "pi-1" },
    });
    expect(
      readEscalationInput("ct/v1/s-1/agent/pi-1/state", JSON.stringify({ ...will, reason: "shutdown" })),
    ).toMatchObject({ type: "ignored" });
    expect(readEscalationInput("ct/v1/s-1/agent/pi-1/state", "")).toMatchObject({ type: "ignored" });
  });
});
