/**
 * The escalation configuration: people and how to reach them, each site's tiers and on-call
 * roster, which alarms escalate. A YAML (or JSON) file named by COLDTRACE_ESCALATION_CONFIG,
 * validated once at start; every problem is reported with its path, like the gateway's config
 * (`sites.store-12.tiers[0]: needs at least 2 recipients, has 1`), and the flow does not run
 * on a configuration that could leave an alarm unheard.
 *
 * The at-least-two rule comes from the medical-device cold-chain guideline and the GSP
 * temperature-monitoring appendix: alarms go by SMS to at least two designated people.
 */
import { isTimeZone } from "@coldtrace/protocol";
import { z } from "zod";
import { invalidConfig, parseConfig, readConfigFile } from "../config-file.ts";

export const locales = ["zh-CN", "en"] as const;
export type Locale = (typeof locales)[number];
export const channels = ["sms", "email", "webhook"] as const;
export type Channel = (typeof channels)[number];
export const weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export type Weekday = (typeof weekdays)[number];

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be "HH:MM" (24 h)');
const localized = z.union([
  z.string().min(1),
  z.object({ "zh-CN": z.string().min(1), en: z.string().min(1) }).partial(),
]);

const person = z
  .object({
    name: z.string().min(1),
    locale: z.enum(locales).default("zh-CN"),
    /** E.164, e.g. +8613800138000. */
    sms: z
      .string()
      .regex(/^\+[1-9]\d{6,14}$/, "must be an E.164 number such as +8613800138000")
      .optional(),
    email: z.email().optional(),
    webhook: z.url({ protocol: /^https?$/ }).optional(),
    /** Channels used for this person; default: every channel with an address. */
    channels: z.array(z.enum(channels)).min(1).optional(),
  })
  .strict();

const shift = z
  .object({
    days: z
      .array(z.enum(weekdays))
      .min(1)
      .default([...weekdays]),
    /** Local time of the site; `to` ≤ `from` means the shift runs past midnight. */
    from: hhmm,
    to: hhmm,
    people: z.array(z.string().min(1)).min(1),
  })
  .strict();

const tier = z
  .object({
    afterMinutes: z.number().min(0),
    /** Named people. */
    people: z.array(z.string().min(1)).default([]),
    /** Also whoever is on call at the site at that moment (the site's `onCall` roster). */
    onCall: z.boolean().default(false),
  })
  .strict();

const policy = {
  timeZone: z.string().min(1),
  tiers: z.array(tier).min(1).max(6),
  /** Every tier reached is notified again this often until the alarm is acknowledged or clears. */
  repeatMinutes: z.number().positive(),
  onCall: z.array(shift),
};

const site = z
  .object({
    name: localized.optional(),
    units: z.record(z.string(), localized).default({}),
    ...z.object(policy).partial().shape,
  })
  .strict();

export const escalationConfig = z
  .object({
    minRecipientsPerTier: z.number().int().min(1).default(2),
    people: z.record(z.string(), person),
    defaults: z
      .object({
        timeZone: policy.timeZone.default("Asia/Shanghai"),
        tiers: policy.tiers,
        repeatMinutes: policy.repeatMinutes.default(10),
        onCall: policy.onCall.default([]),
      })
      .strict(),
    sites: z.record(z.string(), site).default({}),
    triggers: z
      .object({
        /**
         * Alarm kinds (of the contract's alarm events) that escalate. Kinds this version of the
         * contract does not know yet, such as the gateway's system alarms, may be listed.
         */
        kinds: z
          .array(z.string().min(1))
          .default(["temperature", "probe_fault", "recording_gap", "audit_chain_broken", "outbox_stuck"]),
        temperatureTiers: z
          .array(z.enum(["alert", "action"]))
          .min(1)
          .default(["alert", "action"]),
        /** Escalate an agent's last will (power or network lost at the store). */
        agentOffline: z.boolean().default(true),
        /** …once it has lasted this long (a reconnect within it is a blip, not an alarm). */
        agentOfflineDelayMinutes: z.number().min(0).default(3),
      })
      .strict()
      .default({
        kinds: ["temperature", "probe_fault", "recording_gap", "audit_chain_broken", "outbox_stuck"],
        temperatureTiers: ["alert", "action"],
        agentOffline: true,
        agentOfflineDelayMinutes: 3,
      }),
    links: z
      .object({ ttlHours: z.number().positive().default(72) })
      .strict()
      .default({ ttlHours: 72 }),
  })
  .strict();

export type EscalationConfigInput = z.input<typeof escalationConfig>;
export type Person = z.output<typeof person> & { id: string; channels: Channel[] };
export type Shift = z.output<typeof shift>;
export type Tier = z.output<typeof tier>;

export interface SitePolicy {
  siteId: string;
  name: { "zh-CN"?: string; en?: string };
  units: Record<string, { "zh-CN"?: string; en?: string }>;
  timeZone: string;
  tiers: Tier[];
  repeatMinutes: number;
  onCall: Shift[];
}

export interface EscalationConfig {
  minRecipientsPerTier: number;
  people: ReadonlyMap<string, Person>;
  triggers: z.output<typeof escalationConfig>["triggers"];
  links: { ttlHours: number };
  /** The policy of a site (its own settings over the defaults). */
  site(siteId: string): SitePolicy;
}

const asLocalized = (v: z.output<typeof localized> | undefined) =>
  typeof v === "string" ? { "zh-CN": v, en: v } : (v ?? {});

function minutesOf(t: string): number {
  const [h, m] = t.split(":").map(Number);
  return h! * 60 + m!;
}

/** Minutes of the week (Mon 00:00 = 0) a shift covers. */
function shiftMinutes(s: Shift): number[] {
  const out: number[] = [];
  const from = minutesOf(s.from);
  let to = minutesOf(s.to);
  if (to <= from) to += 24 * 60;
  for (const d of s.days) {
    const base = weekdays.indexOf(d) * 24 * 60;
    for (let m = from; m < to; m++) out.push((base + m) % (7 * 24 * 60));
  }
  return out;
}

function describeMinute(m: number): string {
  const d = weekdays[Math.floor(m / (24 * 60))]!;
  const hh = String(Math.floor((m % (24 * 60)) / 60)).padStart(2, "0");
  const mm = String(m % 60).padStart(2, "0");
  return `${d} ${hh}:${mm}`;
}

/**
 * Validate a parsed configuration object. Throws CT_CFG_INVALID listing every problem by path,
 * including the cross checks zod cannot express: every tier reaches at least
 * `minRecipientsPerTier` people at every hour of the week, every person named exists and has an
 * address for each of their channels, the on-call roster covers the whole week.
 */
export function parseEscalationConfig(input: unknown, source = "escalation config"): EscalationConfig {
  const c = parseConfig(escalationConfig, input, source);
  const problems: Array<{ path: string; message: string }> = [];
  const people = new Map<string, Person>();
  for (const [id, p] of Object.entries(c.people)) {
    const withAddress = channels.filter((ch) => p[ch] !== undefined);
    const chosen = p.channels ?? withAddress;
    for (const ch of chosen) {
      if (p[ch] === undefined)
        problems.push({
          path: `people.${id}.channels`,
          message: `${ch} is listed but ${id} has no ${ch} address`,
        });
    }
    if (chosen.length === 0)
      problems.push({ path: `people.${id}`, message: "has no sms, email or webhook address" });
    people.set(id, { ...p, id, channels: chosen });
  }

  const sitePolicy = (siteId: string): SitePolicy => {
    const s = c.sites[siteId];
    return {
      siteId,
      name: asLocalized(s?.name ?? siteId),
      units: Object.fromEntries(Object.entries(s?.units ?? {}).map(([u, n]) => [u, asLocalized(n)])),
      timeZone: s?.timeZone ?? c.defaults.timeZone,
      tiers: s?.tiers ?? c.defaults.tiers,
      repeatMinutes: s?.repeatMinutes ?? c.defaults.repeatMinutes,
      onCall: s?.onCall ?? c.defaults.onCall,
    };
  };

  const checkPolicy = (where: string, p: SitePolicy) => {
    if (!isTimeZone(p.timeZone))
      problems.push({
        path: `${where}.timeZone`,
        message: `unknown time zone ${JSON.stringify(p.timeZone)}`,
      });
    const known = (ids: string[], path: string) => {
      for (const id of ids)
        if (!people.has(id)) problems.push({ path, message: `unknown person ${JSON.stringify(id)}` });
    };
    p.onCall.forEach((s, i) => {
      known(s.people, `${where}.onCall[${i}].people`);
    });
    // Who is on call at each minute of the week.
    const week: Array<Set<string>> = Array.from({ length: 7 * 24 * 60 }, () => new Set());
    for (const s of p.onCall) for (const m of shiftMinutes(s)) for (const id of s.people) week[m]!.add(id);
    p.tiers.forEach((t, i) => {
      known(t.people, `${where}.tiers[${i}].people`);
      if (i > 0 && t.afterMinutes <= p.tiers[i - 1]!.afterMinutes) {
        problems.push({
          path: `${where}.tiers[${i}].afterMinutes`,
          message: `must be later than tier ${i}'s (${p.tiers[i - 1]!.afterMinutes})`,
        });
      }
      if (!t.onCall && t.people.length === 0)
        problems.push({ path: `${where}.tiers[${i}]`, message: "names no people and is not onCall" });
      // The fewest distinct people this tier reaches at any minute of the week.
      let fewest = t.people.length;
      let when = "";
      if (t.onCall) {
        fewest = Number.POSITIVE_INFINITY;
        week.forEach((onCall, m) => {
          const n = new Set([...t.people, ...onCall]).size;
          if (n < fewest) {
            fewest = n;
            when = ` on ${describeMinute(m)} (${p.timeZone})`;
          }
        });
      }
      if (fewest < c.minRecipientsPerTier) {
        problems.push({
          path: `${where}.tiers[${i}]`,
          message: `needs at least ${c.minRecipientsPerTier} recipients, has ${fewest}${when}`,
        });
      }
    });
  };

  // The defaults are the policy of every site not configured on its own.
  checkPolicy("defaults", sitePolicy("\u0000defaults"));
  for (const siteId of Object.keys(c.sites)) checkPolicy(`sites.${siteId}`, sitePolicy(siteId));
  if (problems.length > 0) {
    throw invalidConfig(source, [...new Map(problems.map((p) => [`${p.path}: ${p.message}`, p])).values()]);
  }
  return Object.freeze({
    minRecipientsPerTier: c.minRecipientsPerTier,
    people,
    triggers: c.triggers,
    links: c.links,
    site: sitePolicy,
  });
}

/** Read and validate the file (YAML or JSON). */
export function loadEscalationConfig(file: string): EscalationConfig {
  return parseEscalationConfig(readConfigFile(file, "escalation configuration"), file);
}
