/**
 * The `console:` section of the gateway configuration: whether the gateway serves the web
 * console, the sites' names and time zones (every time a person reads is shown in its site's
 * zone, never as epoch milliseconds), the default language, and the live stream's timers.
 *
 *   console:
 *     defaultLanguage: zh-CN
 *     defaultTimeZone: Asia/Shanghai
 *     sites:
 *       store-1: { name: 徐汇店, timeZone: Asia/Shanghai }
 */
import { segmentId } from "@coldtrace/protocol";
import { z } from "zod";

/** An IANA time zone this Node (ICU) knows, e.g. Asia/Shanghai. */
export function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

const timeZone = z
  .string()
  .min(1)
  .refine(isTimeZone, { message: "must be an IANA time zone such as Asia/Shanghai or Europe/Berlin" });

/** The gateway host's zone (TZ, else the system's): what an unconfigured site is shown in. */
export function hostTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

export const consoleLanguages = ["zh-CN", "en"] as const;
export type ConsoleLanguage = (typeof consoleLanguages)[number];

export const consoleSiteSchema = z
  .object({
    /** What people call the site (a store's name); default: the site id. */
    name: z.string().min(1).max(128).optional(),
    /** The site's time zone; default: `console.defaultTimeZone`. */
    timeZone: timeZone.optional(),
  })
  .strict();

export const consoleSchema = z
  .object({
    /** Serve the console at /console/ and its API under /api/v1/console/. */
    enabled: z.boolean().default(true),
    /**
     * Folder of the built console (index.html and assets/). Default: the build of the
     * @coldtrace/console workspace, made by `npm ci` (dashboards/console/dist).
     */
    assetsDir: z.string().min(1).optional(),
    /** Language of a browser that has not chosen one yet. */
    defaultLanguage: z.enum(consoleLanguages).default("zh-CN"),
    /** Time zone of sites not listed under `sites`. Default: the gateway host's zone. */
    defaultTimeZone: timeZone.optional(),
    sites: z.record(segmentId, consoleSiteSchema).default({}),
    /** A probe whose calibration falls due within this many days is flagged "due soon". */
    calibrationDueSoonDays: z.number().int().min(0).max(365).default(30),
    /**
     * The live stream sends a `ping` this often; a browser that hears nothing for 2.5× this
     * long shows "connection lost" and reconnects.
     */
    heartbeatMs: z.number().int().min(1000).max(300_000).default(15_000),
    /**
     * While a browser is connected, unit states are re-derived this often (a unit whose
     * readings stop turns to "gap" without any event saying so).
     */
    refreshMs: z.number().int().min(500).max(300_000).default(5000),
    /** Events kept for a browser that reconnects (Last-Event-ID); older ones mean "reload". */
    replayEvents: z.number().int().min(0).max(100_000).default(2000),
  })
  .strict();

export type ConsoleConfig = z.output<typeof consoleSchema>;

export interface ConsoleSite {
  siteId: string;
  name: string;
  timeZone: string;
}

/** A site as the console shows it: configured name and zone, or the defaults. */
export function consoleSite(config: ConsoleConfig, siteId: string): ConsoleSite {
  const s = config.sites[siteId];
  return {
    siteId,
    name: s?.name ?? siteId,
    timeZone: s?.timeZone ?? config.defaultTimeZone ?? hostTimeZone(),
  };
}
