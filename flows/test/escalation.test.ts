/**
 * Alarm escalation end to end, every peer real: a simulated edge agent (the fleet generator)
 * → the gateway (embedded broker with ACLs, SQLite, the excursion engine, the REST API) →
 * alarm events and last wills over MQTT → the escalation flow file loaded into a real Node-RED 5
 * → a fake SMS gateway and a webhook receiver over HTTP and a real SMTP server → people's
 * acknowledgements back through the gateway's API, every notification in the alarm's timeline.
 *
 * The escalation's time is a test clock handed to Node-RED (coldtraceEscalationClock): it is
 * moved on purpose, and every "nothing more was sent" is checked after the flow says it has
 * evaluated that moment (GET /escalation/state → evaluatedAt), never after a sleep.
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { GatewayRuntime } from "@coldtrace/gateway";
import { Fleet } from "@coldtrace/simulators";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startTestGateway, type TestGateway } from "./harness/gateway.ts";
import { type NodeRed, startNodeRed, writeFlow } from "./harness/node-red.ts";
import {
  type HttpPeer,
  type PeerRequest,
  type SmtpPeer,
  startHttpPeer,
  startSmtpPeer,
} from "./harness/peers.ts";

const MIN = 60_000;
/** The next Tuesday, 03:00 in Shanghai (after now, as the alarms' event times are): the night on-call pair is on duty. */
function nextTuesdayNight(): number {
  const day = 24 * 60 * MIN;
  let t = Math.ceil(Date.now() / day) * day + 19 * 60 * MIN; // 19:00 UTC = 03:00 next day in Shanghai (+08:00)
  while (
    new Intl.DateTimeFormat("en-US", { timeZone: "Asia/Shanghai", weekday: "short" }).format(t) !== "Tue"
  )
    t += day;
  return t;
}
const CLOCK_START = nextTuesdayNight();
const PUBLIC_URL = "https://alarms.coldtrace.test";
const LINK_SECRET = "test-link-secret-0123456789";
const STATE_TOKEN = "state-token-for-tests";
const INBOUND_TOKEN = "sms-inbound-token-for-tests";

interface Ctx {
  dir: string;
  gw: GatewayRuntime;
  fleet: Fleet;
  nr: NodeRed;
  sms: HttpPeer;
  hooks: HttpPeer;
  smtp: SmtpPeer;
  t: TestGateway;
  siteId: string;
  clock: number;
}

const ctx = {} as Ctx;

const api = <T = unknown>(method: string, url: string, body?: unknown) => ctx.t.api<T>(method, url, body);

interface EscalationState {
  now: number;
  evaluatedAt: number;
  escalations: Array<{
    key: string;
    status: string;
    kind: string;
    notified: string[];
    tiers: Array<{ sent: number; lastRound: number } | null>;
    acknowledged: { by: string; via: string } | null;
  }>;
}

async function state(): Promise<EscalationState> {
  const res = await fetch(`${ctx.nr.url}/escalation/state`, {
    headers: { authorization: `Bearer ${STATE_TOKEN}` },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as EscalationState;
}

/** Move the escalation's clock, and wait until the flow has evaluated that moment. */
async function advance(minutes: number): Promise<void> {
  ctx.clock += minutes * MIN;
  await ctx.nr.setClock(ctx.clock);
  for (;;) {
    if ((await state()).evaluatedAt >= ctx.clock) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const smsTo = (number: string) => (r: PeerRequest) => (r.body as { to?: string }).to === number;
const text = (r: PeerRequest) => (r.body as { text: string }).text;
const ref = (r: PeerRequest) => (r.body as { reference: string }).reference;

const people = {
  "night.wang": { name: "王丽", locale: "zh-CN", sms: "+8613800000001", email: "wang.li@store.test" },
  "night.zhao": { name: "Zhao Min", locale: "en", sms: "+8613800000002" },
  "day.chen": { name: "陈杰", sms: "+8613800000003" },
  "day.liu": { name: "刘洋", sms: "+8613800000004" },
  "sup.li": { name: "李娜", email: "li.na@region.test", webhook: "" },
  "sup.wu": { name: "吴强", sms: "+8613800000006" },
  "qa.zhang": { name: "张伟", email: "zhang.wei@qa.test" },
  "qa.chen": { name: "Chen Yu", locale: "en", email: "chen.yu@qa.test" },
};

beforeAll(async () => {
  const prefix = `esc${randomBytes(3).toString("hex")}`;
  ctx.siteId = `${prefix}-1`;
  const agentId = `${ctx.siteId}-pi`;
  ctx.t = await startTestGateway("escalation-e2e", `gw-${prefix}`, [
    { username: agentId, role: "agent", siteIds: [ctx.siteId], agentId },
    { username: "node-red", role: "monitor", siteIds: ["*"] },
  ]);
  ctx.gw = ctx.t.gw;
  ctx.dir = ctx.t.dir;
  const agentSecret = ctx.t.secrets.get(agentId)!;
  const monitorSecret = ctx.t.secrets.get("node-red")!;
  const token = ctx.t.token;
  [ctx.sms, ctx.hooks, ctx.smtp] = await Promise.all([startHttpPeer(), startHttpPeer(), startSmtpPeer()]);
  people["sup.li"].webhook = `${ctx.hooks.url}/wecom/robot`;
  // The SMS carrier is busy once, for 吴强's first message: retried, then sent.
  let busy = true;
  let n = 0;
  ctx.sms.respond = (req) => {
    if (busy && (req.body as { to?: string }).to === "+8613800000006") {
      busy = false;
      return { status: 503, body: { error: "carrier busy" } };
    }
    return { status: 200, body: { id: `sms-${++n}` } };
  };

  const config = {
    people,
    defaults: {
      timeZone: "Asia/Shanghai",
      repeatMinutes: 10,
      tiers: [
        { afterMinutes: 0, onCall: true },
        { afterMinutes: 15, people: ["sup.li", "sup.wu"] },
        { afterMinutes: 30, people: ["qa.zhang", "qa.chen"] },
      ],
      onCall: [
        {
          days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
          from: "08:00",
          to: "20:00",
          people: ["day.chen", "day.liu"],
        },
        {
          days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
          from: "20:00",
          to: "08:00",
          people: ["night.wang", "night.zhao"],
        },
      ],
    },
    sites: {
      [ctx.siteId]: {
        name: { "zh-CN": "南京路店", en: "Nanjing Rd store" },
        units: { [`${ctx.siteId}-u1`]: { "zh-CN": "试剂冷藏柜1号", en: "reagent fridge 1" } },
      },
    },
    triggers: { temperatureTiers: ["action"], agentOfflineDelayMinutes: 2 },
  };
  const configFile = path.join(ctx.dir, "escalation.yaml");
  await writeFile(configFile, stringify(config));

  const userDir = path.join(ctx.dir, "node-red");
  const nrOptions = {
    userDir,
    flow: "escalation/flows.json",
    credentials: { "ct-esc-broker": { user: "node-red", password: monitorSecret } },
    clockStart: CLOCK_START,
    env: {
      COLDTRACE_MQTT_URL: ctx.gw.brokerUrl,
      COLDTRACE_ESCALATION_CLIENT_ID: `${prefix}-escalation`,
      COLDTRACE_GATEWAY_URL: ctx.gw.apiUrl!,
      COLDTRACE_GATEWAY_TOKEN: token,
      COLDTRACE_ESCALATION_CONFIG: configFile,
      COLDTRACE_ESCALATION_PUBLIC_URL: PUBLIC_URL,
      COLDTRACE_ESCALATION_LINK_SECRET: LINK_SECRET,
      COLDTRACE_ESCALATION_STATE_TOKEN: STATE_TOKEN,
      COLDTRACE_SMS_INBOUND_TOKEN: INBOUND_TOKEN,
      COLDTRACE_ESCALATION_TICK_MS: "25",
      COLDTRACE_SMS_URL: `${ctx.sms.url}/sms/send`,
      COLDTRACE_SMS_TOKEN: "sms-provider-token",
      COLDTRACE_SMTP_URL: ctx.smtp.url,
      COLDTRACE_SMTP_FROM: "Coldtrace <alarms@coldtrace.test>",
      COLDTRACE_NOTIFY_POLL_MS: "25",
      COLDTRACE_NOTIFY_RETRY_BASE_MS: "60000",
    },
  };
  await mkdir(userDir, { recursive: true });
  await writeFlow(nrOptions);
  ctx.clock = CLOCK_START;
  // Node-RED's MQTT session must be subscribed before the agent raises anything.
  const subscribed = ctx.t.subscribed(`${prefix}-escalation`, [
    "ct/v1/+/events/alarm/+",
    "ct/v1/+/agent/+/state",
  ]);
  ctx.nr = await startNodeRed(nrOptions);
  await subscribed;

  const startAt = Math.floor(Date.now() / MIN) * MIN - 4 * 60 * MIN;
  ctx.fleet = new Fleet({
    url: ctx.gw.brokerUrl,
    sites: 1,
    units: 2,
    probes: 2,
    sitePrefix: prefix,
    intervalMs: MIN,
    startAt,
    // Unit 1: 14 °C from minute 20 for 60 minutes (above the action limit 12 °C for longer than
    // its 5 min delay); unit 2: the same from minute 100 for 20 minutes.
    excursions: [
      { site: 0, unit: 0, afterMs: 20 * MIN, durationMs: 60 * MIN, tempC: 14 },
      { site: 0, unit: 1, afterMs: 100 * MIN, durationMs: 20 * MIN, tempC: 14 },
    ],
    credentials: () => ({ username: agentId, password: agentSecret }),
  });
  await ctx.fleet.start();
});

afterAll(async () => {
  await ctx.fleet?.stop().catch(() => {});
  await ctx.nr?.stop();
  await ctx.t?.stop();
  await Promise.all([ctx.sms?.close(), ctx.hooks?.close(), ctx.smtp?.close()]);
});

describe("alarm escalation flow in Node-RED 5", () => {
  let alarmId = "";

  it("tells the night on-call pair at once, in their languages, then tier 2 at 15 min and tier 3 at 30, repeating every 10", async () => {
    await ctx.fleet.advanceTo(ctx.fleet.options.startAt + 40 * MIN);
    const first = await ctx.sms.requests.waitFor(smsTo("+8613800000001"), "SMS to the night on-call (王丽)");
    alarmId = ref(first).split(".t1.")[0]!;
    const alarm = await api<{ kind: string; tier: string; state: string }>("GET", `/alarms/${alarmId}`);
    expect(alarm.body).toMatchObject({ kind: "temperature", tier: "action", state: "raised" });

    // zh-CN for 王丽: store, unit, temperature, limit, since when, reply code and link.
    expect(text(first)).toMatch(
      /^【冷链告警】南京路店 试剂冷藏柜1号：温度 14 °C，高于行动限 12 °C，自 .+ 起已 .+。回复 \d{4} 确认；确认：https:\/\/alarms\.coldtrace\.test\/escalation\/ack\//,
    );
    expect(first.headers.authorization).toBe("Bearer sms-provider-token");
    // en for Zhao Min, the second person of the pair: two recipients reached.
    const second = await ctx.sms.requests.waitFor(
      smsTo("+8613800000002"),
      "SMS to the night on-call (Zhao Min)",
    );
    expect(text(second)).toMatch(
      /^\[Coldtrace ALARM\] Nanjing Rd store reagent fridge 1: 14 °C, above the action limit 12 °C, since /,
    );
    const mail = await ctx.smtp.mails.waitFor(
      (m) => m.to !== undefined && JSON.stringify(m.to).includes("wang.li@store.test"),
      "e-mail to 王丽",
    );
    expect(mail.subject).toContain("南京路店 试剂冷藏柜1号");
    expect(mail.text).toContain(`${PUBLIC_URL}/escalation/ack/`);

    // Nobody on the day roster was told, and tier 2 not yet.
    await advance(9);
    expect(
      ctx.sms.requests.filter((r) =>
        ["+8613800000003", "+8613800000004", "+8613800000006"].includes((r.body as { to: string }).to),
      ),
    ).toEqual([]);
    expect(ctx.hooks.requests.items).toEqual([]);
    // The flow's own account, decided at the moment it evaluated (no message can be in flight).
    const told = async () => (await state()).escalations.find((e) => e.key === alarmId);
    expect(await told()).toMatchObject({
      notified: ["night.wang", "night.zhao"],
      tiers: [{ sent: 1, lastRound: 0 }],
    });

    // 10 min: the first reminder to tier 1.
    await advance(1);
    const reminder = await ctx.sms.requests.waitFor(
      (r) => smsTo("+8613800000001")(r) && ref(r).includes(".t1.r1."),
      "reminder to 王丽",
    );
    expect(text(reminder)).toContain("第2次提醒");
    await advance(4); // 14 min
    expect(ctx.sms.requests.filter(smsTo("+8613800000006"))).toEqual([]);
    expect(await told()).toMatchObject({
      notified: ["night.wang", "night.zhao"],
      tiers: [{ sent: 2, lastRound: 1 }],
    });

    // 15 min: tier 2 (SMS to 吴强, e-mail and WeCom-style webhook to 李娜).
    await advance(1);
    const wu = await ctx.sms.requests.waitFor(smsTo("+8613800000006"), "tier 2 SMS");
    expect(text(wu)).toContain("已升级至第2级");
    const hook = await ctx.hooks.requests.waitFor((r) => r.path === "/wecom/robot", "tier 2 webhook");
    expect(hook.body).toMatchObject({ type: "coldtrace.alarm", alarmId, tier: 2, alarmKind: "temperature" });
    await ctx.smtp.mails.waitFor((m) => JSON.stringify(m.to).includes("li.na@region.test"), "tier 2 e-mail");
    await advance(14); // 29 min
    expect(ctx.smtp.mails.filter((m) => JSON.stringify(m.to).includes("@qa.test"))).toEqual([]);
    expect((await told())?.notified).toEqual(["night.wang", "night.zhao", "sup.li", "sup.wu"]);

    // 30 min: tier 3, the QA pair.
    await advance(1);
    await ctx.smtp.mails.waitForCount((m) => JSON.stringify(m.to).includes("@qa.test"), 2, "tier 3 e-mails");
    // 吴强's first SMS failed once (503) and went out again on the next try.
    expect(ctx.sms.requests.filter((r) => r.status !== 200).map(ref)).toEqual([
      `${alarmId}.t2.r0.sup.wu.sms`,
    ]);
    const order = ctx.sms.requests.items
      .filter((r) => ref(r).startsWith(alarmId) && r.status === 200)
      .map((r) => `${(r.body as { to: string }).to.slice(-1)}:${/\.(t\d+\.r\d+)\./.exec(ref(r))![1]}`);
    // Tier 1 (1, 2) at 0, 10, 20, 30 min; tier 2 (6) at 15, 25 min; in that order.
    expect(order).toEqual([
      "1:t1.r0",
      "2:t1.r0",
      "1:t1.r1",
      "2:t1.r1",
      "6:t2.r0",
      "1:t1.r2",
      "2:t1.r2",
      "6:t2.r1",
      "1:t1.r3",
      "2:t1.r3",
    ]);
  });

  it("stops when 王丽 acknowledges from the e-mail link, recorded as hers by the gateway", async () => {
    const mail = ctx.smtp.mails.items.find((m) => JSON.stringify(m.to).includes("wang.li@store.test"))!;
    const link = /https:\/\/alarms\.coldtrace\.test(\/escalation\/ack\/[A-Za-z0-9_.-]+)/.exec(
      mail.text ?? "",
    )![1]!;
    const page = await fetch(`${ctx.nr.url}${link}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("我已知悉，立即处理");
    // Opening the link acknowledged nothing (mail scanners open links).
    expect((await api<{ state: string }>("GET", `/alarms/${alarmId}`)).body.state).toBe("raised");
    // A forged link is refused.
    const forged = await fetch(`${ctx.nr.url}${link.slice(0, -3)}abc`, { method: "POST" });
    expect(forged.status).toBe(400);

    const ack = await fetch(`${ctx.nr.url}${link}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ comment: "门未关好，已处理" }).toString(),
    });
    expect(ack.status).toBe(200);
    expect(await ack.text()).toContain("告警已确认");
    const alarm = await api<{ state: string; acknowledged: { by: string; comment: string } }>(
      "GET",
      `/alarms/${alarmId}`,
    );
    expect(alarm.body.state).toBe("acknowledged");
    expect(alarm.body.acknowledged.by).toBe("night.wang");
    expect(alarm.body.acknowledged.comment).toContain("门未关好，已处理");

    const sentBefore =
      ctx.sms.requests.items.length + ctx.smtp.mails.items.length + ctx.hooks.requests.items.length;
    await advance(60);
    expect(
      ctx.sms.requests.items.length + ctx.smtp.mails.items.length + ctx.hooks.requests.items.length,
    ).toBe(sentBefore);
    expect((await state()).escalations.find((e) => e.key === alarmId)).toMatchObject({
      status: "acknowledged",
      acknowledged: { by: "night.wang", via: "link" },
    });

    // Who was told, when, how: every message is in the alarm's timeline at the gateway.
    const sentIds = new Set([
      ...ctx.sms.requests.filter((r) => ref(r).startsWith(alarmId) && r.status === 200).map(ref),
      ...ctx.hooks.requests
        .filter((r) => (r.body as { alarmId: string }).alarmId === alarmId)
        .map((r) => (r.body as { notificationId: string }).notificationId),
      ...ctx.smtp.mails.items
        .map((m) => String(m.headers.get("x-coldtrace-notification") ?? ""))
        .filter((id) => id.startsWith(alarmId)),
    ]);
    type Entry = {
      what: string;
      summary: string;
      atIso: string;
      notification?: { notificationId: string; status: string; attempt: number };
    };
    const entries = async () =>
      (await api<{ entries: Entry[] }>("GET", `/alarms/${alarmId}/timeline`)).body.entries;
    const sentInTimeline = async () =>
      new Set(
        (await entries())
          .filter((e) => e.notification?.status === "sent")
          .map((e) => e.notification!.notificationId),
      );
    for (;;) {
      const have = await sentInTimeline();
      if (
        [...sentIds].every((id) => have.has(id)) &&
        (await entries()).some((e) => e.notification?.status === "acknowledged")
      )
        break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const tl = await entries();
    expect(sentIds.size).toBe((await sentInTimeline()).size);
    expect(tl[0]).toMatchObject({ what: "raised" });
    expect(
      tl
        .filter((e) => e.notification?.notificationId === `${alarmId}.t2.r0.sup.wu.sms`)
        .map((e) => [e.notification!.status, e.notification!.attempt]),
    ).toEqual([
      ["retried", 1],
      ["sent", 2],
    ]);
    expect(tl.find((e) => e.notification?.status === "retried")?.summary).toContain("503");
    expect(tl.find((e) => e.what === "acknowledged")?.summary).toContain("acknowledged by night.wang");
    expect(tl.find((e) => e.notification?.status === "acknowledged")?.summary).toBe(
      "acknowledged by 王丽 (night.wang) via link",
    );
    // Times people read are ISO 8601, and the entries are in order.
    expect(tl.map((e) => e.atIso)).toEqual([...tl.map((e) => e.atIso)].sort());
  });

  it("sends the all clear to everyone who was told when the alarm clears", async () => {
    await ctx.fleet.advanceTo(ctx.fleet.options.startAt + 95 * MIN);
    const told = ["+8613800000001", "+8613800000002", "+8613800000006"];
    for (const n of told) {
      const r = await ctx.sms.requests.waitFor(
        (x) =>
          smsTo(n)(x) &&
          ref(x) ===
            `${alarmId}.clear.${Object.entries(people).find(([, p]) => "sms" in p && p.sms === n)![0]}.sms`,
        `all clear to ${n}`,
      );
      expect(text(r)).toMatch(/冷链告警解除|all clear/);
    }
    await ctx.smtp.mails.waitForCount(
      (m) => m.subject?.includes("解除") || m.subject?.includes("all clear") || false,
      4,
      "all-clear e-mails (王丽, 李娜, 张伟, Chen Yu)",
    );
  });

  it("a second alarm stops on clear before anyone acknowledged, with the all clear", async () => {
    await ctx.fleet.advanceTo(ctx.fleet.options.startAt + 112 * MIN);
    const first = await ctx.sms.requests.waitFor(
      (r) => smsTo("+8613800000002")(r) && !ref(r).startsWith(alarmId),
      "SMS for the second alarm",
    );
    const second = ref(first).split(".t1.")[0]!;
    expect(second).not.toBe(alarmId);
    await ctx.fleet.advanceTo(ctx.fleet.options.startAt + 130 * MIN);
    await ctx.sms.requests.waitFor(
      (r) => ref(r) === `${second}.clear.night.zhao.sms`,
      "all clear for the second alarm",
    );
    const before = ctx.sms.requests.items.filter((r) => ref(r).startsWith(second)).length;
    await advance(30);
    expect(ctx.sms.requests.items.filter((r) => ref(r).startsWith(second)).length).toBe(before);
    expect((await state()).escalations.find((e) => e.key === second)?.status).toBe("cleared");
  });

  it("escalates an agent's last will after its delay, stops on an SMS reply code, and clears when the agent is back", async () => {
    const agent = ctx.fleet.agents[0]!;
    const client = agent.client!;
    client.options.reconnectPeriod = 0;
    client.stream.destroy(); // no DISCONNECT: the broker publishes the last will
    const key = await (async () => {
      for (;;) {
        const e = (await state()).escalations.find((x) => x.kind === "agent_offline");
        if (e) return e.key;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // Pending for the delay: a reconnect within 2 minutes would be a blip.
    expect(ctx.sms.requests.filter((r) => ref(r).startsWith(key))).toEqual([]);
    await advance(2);
    const msg = await ctx.sms.requests.waitFor(
      (r) => smsTo("+8613800000002")(r) && ref(r).startsWith(key),
      "agent offline SMS",
    );
    expect(text(msg)).toContain(`monitoring agent ${agent.agentId} offline (power or network lost)`);
    const code = /Reply (\d{4})/.exec(text(msg))![1]!;

    // A reply from a number that was not told, or a wrong code, acknowledges nothing.
    const reply = (from: string, body: string, token = INBOUND_TOKEN) =>
      fetch(`${ctx.nr.url}/escalation/sms/inbound`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ from, text: body }),
      });
    expect((await reply("+8613800000002", `ACK ${code}`, "wrong")).status).toBe(401);
    expect(await (await reply("+8613800000099", `ACK ${code}`)).json()).toMatchObject({ ok: false });
    const ok = await reply("+86 138 0000 0002", `ack ${code}`);
    expect(await ok.json()).toMatchObject({ ok: true });
    expect((await state()).escalations.find((e) => e.key === key)).toMatchObject({
      status: "acknowledged",
      acknowledged: { by: "night.zhao", via: "sms-reply" },
    });
    const before = ctx.sms.requests.items.filter((r) => ref(r).startsWith(key)).length;
    await advance(20);
    expect(ctx.sms.requests.items.filter((r) => ref(r).startsWith(key)).length).toBe(before);

    agent.client = undefined;
    await ctx.fleet.start(); // back online: retained `online`
    await ctx.sms.requests.waitFor((r) => ref(r) === `${key}.clear.night.zhao.sms`, "agent back: all clear");
  });
});
