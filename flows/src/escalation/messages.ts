/**
 * What people read: the alarm, the reminder and the "all clear", in zh-CN or en per recipient,
 * naming the store, the unit, the temperature, the limit and how long. Times are the site's
 * local time (never epoch milliseconds); durations in minutes and hours.
 *
 * SMS text is kept short (one or two 70-character Chinese SMS segments when it can be); the
 * e-mail repeats it with the details an inspector asks for.
 */
import type { Locale, SitePolicy } from "./config.ts";

/** What escalates: a gateway alarm, or an agent's last will. */
export interface Trigger {
  /** Escalation key: the gateway's alarm id, or `agent-offline-{site}-{agent}-{session}`. */
  key: string;
  source: "alarm" | "agent";
  siteId: string;
  unitId?: string;
  agentId?: string;
  probeId?: string;
  kind: string;
  tier?: "alert" | "action";
  side?: "high" | "low";
  /** Worst probe's temperature when the alarm was raised, °C. */
  valueC?: number;
  /** The limit crossed, °C. */
  limitC?: number;
  /** Event time the alarm was raised (or the agent lost), epoch ms. */
  raisedAt: number;
  /** The gateway's own sentence (English), shown as detail. */
  message: string;
}

export type MessageKind = "alarm" | "all_clear";

export interface RenderInput {
  trigger: Trigger;
  site: SitePolicy;
  locale: Locale;
  kind: MessageKind;
  /** 1-based tier of the escalation, and 0-based repeat round within it. */
  tier: number;
  round: number;
  now: number;
  ackUrl?: string;
  replyCode?: string;
}

export interface Rendered {
  /** SMS text, also the e-mail subject's source. */
  sms: string;
  subject: string;
  body: string;
}

const T = {
  "zh-CN": {
    brand: { alarm: "【冷链告警】", all_clear: "【冷链告警解除】" },
    reminder: (n: number) => `第${n}次提醒 `,
    escalated: (n: number) => `已升级至第${n}级 `,
    above: "高于",
    below: "低于",
    limit: { alert: "警戒限", action: "行动限" },
    temperature: (v: string, side: string, lim: string, limit: string) => `温度 ${v}，${side}${lim} ${limit}`,
    temperatureNoValue: (side: string, lim: string, limit: string) => `温度${side}${lim} ${limit}`,
    since: (t: string, d: string) => `，自 ${t} 起已 ${d}`,
    kinds: {
      probe_fault: (probe?: string) => `探头${probe ? ` ${probe}` : ""}故障`,
      probe_drift: () => "探头读数偏差过大",
      calibration_overdue: (probe?: string) => `探头${probe ? ` ${probe}` : ""}校准过期`,
      recording_gap: () => "温度记录中断（期间暴露情况未知）",
      connectivity_gap: () => "长时间未收到温度数据",
      agent_offline: (agent?: string) => `监测终端${agent ? ` ${agent}` : ""}离线（可能断电或断网）`,
      audit_chain_broken: () => "审计记录链校验失败",
      outbox_stuck: () => "网关事件发送阻塞",
    } as Record<string, (x?: string) => string>,
    ack: (code?: string, url?: string) =>
      [code ? `回复 ${code} 确认` : "", url ? `确认：${url}` : ""].filter(Boolean).join("；"),
    cleared: (d: string) => `已恢复正常，告警持续 ${d}。`,
    minutes: (m: number) =>
      m < 60 ? `${m} 分钟` : `${Math.floor(m / 60)} 小时${m % 60 ? ` ${m % 60} 分钟` : ""}`,
    details: "详情",
    raisedAt: "告警时间",
    alarmId: "告警编号",
    gateway: "网关描述",
    footer: "此消息由 Coldtrace 冷链监测系统发送。",
  },
  en: {
    brand: { alarm: "[Coldtrace ALARM] ", all_clear: "[Coldtrace all clear] " },
    reminder: (n: number) => `Reminder ${n}: `,
    escalated: (n: number) => `Escalated to tier ${n}: `,
    above: "above",
    below: "below",
    limit: { alert: "alert limit", action: "action limit" },
    temperature: (v: string, side: string, lim: string, limit: string) => `${v}, ${side} the ${lim} ${limit}`,
    temperatureNoValue: (side: string, lim: string, limit: string) =>
      `temperature ${side} the ${lim} ${limit}`,
    since: (t: string, d: string) => `, since ${t} (${d})`,
    kinds: {
      probe_fault: (probe?: string) => `probe${probe ? ` ${probe}` : ""} fault`,
      probe_drift: () => "probes disagree",
      calibration_overdue: (probe?: string) => `probe${probe ? ` ${probe}` : ""} calibration overdue`,
      recording_gap: () => "recording gap: exposure unknown",
      connectivity_gap: () => "no temperature data for too long",
      agent_offline: (agent?: string) =>
        `monitoring agent${agent ? ` ${agent}` : ""} offline (power or network lost)`,
      audit_chain_broken: () => "audit trail chain broken",
      outbox_stuck: () => "gateway event outbox stuck",
    } as Record<string, (x?: string) => string>,
    ack: (code?: string, url?: string) =>
      [code ? `Reply ${code} to acknowledge` : "", url ? `or open ${url}` : ""].filter(Boolean).join(" "),
    cleared: (d: string) => `back to normal; the alarm lasted ${d}.`,
    minutes: (m: number) =>
      m < 60 ? `${m} min` : `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ""}`,
    details: "Details",
    raisedAt: "Raised at",
    alarmId: "Alarm",
    gateway: "Gateway says",
    footer: "Sent by Coldtrace cold-chain monitoring.",
  },
} as const;

function pick(name: { "zh-CN"?: string; en?: string } | undefined, locale: Locale, fallback: string): string {
  return name?.[locale] ?? name?.en ?? name?.["zh-CN"] ?? fallback;
}

/** Local time of the site, e.g. "11-24 02:13" / "Nov 24, 02:13". */
export function localTime(at: number, timeZone: string, locale: Locale, withZone = false): string {
  return new Intl.DateTimeFormat(locale, {
    timeZone,
    month: locale === "en" ? "short" : "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    ...(withZone ? { timeZoneName: "short" } : {}),
  }).format(at);
}

function celsius(v: number, locale: Locale): string {
  return `${new Intl.NumberFormat(locale, { maximumFractionDigits: 1 }).format(v)} °C`;
}

/** "Nanjing Rd store fridge 2: 12.6 °C, above the action limit 12 °C, since 02:13 (25 min)". */
function what(i: RenderInput): string {
  const t = T[i.locale];
  const { trigger: x, site } = i;
  const store = pick(site.name, i.locale, x.siteId);
  const unit = x.unitId ? pick(site.units[x.unitId], i.locale, x.unitId) : undefined;
  const where = unit ? `${store} ${unit}` : store;
  const minutes = Math.max(0, Math.floor((i.now - x.raisedAt) / 60_000));
  let fact: string;
  if (x.kind === "temperature" && x.side && x.tier) {
    const side = x.side === "high" ? t.above : t.below;
    const lim = t.limit[x.tier];
    const limit = x.limitC === undefined ? "" : celsius(x.limitC, i.locale);
    fact =
      x.valueC === undefined
        ? t.temperatureNoValue(side, lim, limit)
        : t.temperature(celsius(x.valueC, i.locale), side, lim, limit);
  } else {
    const k = t.kinds[x.kind];
    fact = k ? k(x.kind === "agent_offline" ? x.agentId : x.probeId) : x.message;
  }
  const since = t.since(localTime(x.raisedAt, site.timeZone, i.locale), t.minutes(minutes));
  return `${where}${i.locale === "zh-CN" ? "：" : ": "}${fact}${since}`;
}

export function render(i: RenderInput): Rendered {
  const t = T[i.locale];
  const x = i.trigger;
  const sep = i.locale === "zh-CN" ? "。" : ". ";
  let sms: string;
  if (i.kind === "all_clear") {
    const store = pick(i.site.name, i.locale, x.siteId);
    const unit = x.unitId ? pick(i.site.units[x.unitId], i.locale, x.unitId) : (x.agentId ?? "");
    const minutes = Math.max(0, Math.floor((i.now - x.raisedAt) / 60_000));
    sms = `${t.brand.all_clear}${store} ${unit}${i.locale === "zh-CN" ? "：" : ": "}${t.cleared(t.minutes(minutes))}`;
  } else {
    const prefix = i.round > 0 ? t.reminder(i.round + 1) : i.tier > 1 ? t.escalated(i.tier) : "";
    const ack = t.ack(i.replyCode, i.ackUrl);
    sms = `${t.brand.alarm}${prefix}${what(i)}${ack ? `${sep}${ack}` : ""}`;
  }
  const subject = sms.split(/[。；]|\. /)[0]!;
  const body = [
    sms,
    "",
    `${t.details}:`,
    `  ${t.alarmId}: ${x.key}`,
    `  ${t.raisedAt}: ${localTime(x.raisedAt, i.site.timeZone, i.locale, true)}`,
    `  ${t.gateway}: ${x.message}`,
    "",
    t.footer,
  ].join("\n");
  return { sms, subject, body };
}
