/**
 * Times and temperatures as a person reads them: in the site's time zone and the chosen
 * language, never epoch milliseconds. `now` ticks so "3 min ago" stays true without reload.
 */
import { signal } from "@preact/signals";
import { language, t } from "./i18n.ts";

/** Wall clock for relative times; ticks every 15 s (and when the page becomes visible). */
export const now = signal(Date.now());
setInterval(() => {
  now.value = Date.now();
}, 15_000);
document.addEventListener("visibilitychange", () => {
  now.value = Date.now();
});

const cache = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string, style: "parts" | "zone"): Intl.DateTimeFormat {
  const key = `${timeZone}|${style}`;
  let f = cache.get(key);
  if (!f) {
    f =
      style === "parts"
        ? new Intl.DateTimeFormat("en-CA", {
            timeZone,
            hourCycle: "h23",
            year: "numeric",
            month: "2-digit",
            day: "2-digit",
            hour: "2-digit",
            minute: "2-digit",
            second: "2-digit",
          })
        : new Intl.DateTimeFormat("en", { timeZone, timeZoneName: "short" });
    cache.set(key, f);
  }
  return f;
}

/** The local date and time at a site, as ISO 8601 pieces (same in every language). */
function local(ms: number, timeZone: string) {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone, "parts").formatToParts(ms)) parts[p.type] = p.value;
  const zone =
    formatter(timeZone, "zone")
      .formatToParts(ms)
      .find((p) => p.type === "timeZoneName")?.value ?? "";
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    time: `${parts.hour}:${parts.minute}`,
    zone,
  };
}

/** e.g. "2026-12-02 05:37 GMT+8": ISO 8601 order in the site's zone, unambiguous in both languages. */
export function dateTime(ms: number | null | undefined, timeZone: string): string {
  if (ms === null || ms === undefined) return "—";
  const l = local(ms, timeZone);
  return `${l.date} ${l.time} ${l.zone}`;
}

const relativeFormats = new Map<string, Intl.RelativeTimeFormat>();
function relativeFormat(lang: string): Intl.RelativeTimeFormat {
  let f = relativeFormats.get(lang);
  if (!f) {
    f = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
    relativeFormats.set(lang, f);
  }
  return f;
}

/** "3 min ago", "in 2 days" (calibration due). */
export function relative(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return t("time.never");
  const diff = ms - now.value;
  const abs = Math.abs(diff);
  const rtf = relativeFormat(language.value);
  if (abs < 45_000) return t("time.justNow");
  if (abs < 2 * 3_600_000) return rtf.format(Math.round(diff / 60_000), "minute");
  if (abs < 2 * 86_400_000) return rtf.format(Math.round(diff / 3_600_000), "hour");
  return rtf.format(Math.round(diff / 86_400_000), "day");
}

/** A duration such as "1 h 20 min" / "1小时20分钟". */
export function duration(ms: number): string {
  const totalMin = Math.round(ms / 60_000);
  const d = Math.floor(totalMin / 1440);
  const h = Math.floor((totalMin % 1440) / 60);
  const m = totalMin % 60;
  const parts: string[] = [];
  if (d > 0) parts.push(t("duration.days", { count: d }));
  if (h > 0) parts.push(t("duration.hours", { count: h }));
  if (m > 0 || parts.length === 0) parts.push(t("duration.minutes", { count: m }));
  return parts.join(" ");
}

export function celsius(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined) return "—";
  return `${v.toFixed(digits)} °C`;
}

export function range(limits: { low: number | null; high: number | null }): string {
  const { low, high } = limits;
  if (low !== null && high !== null) return `${low}–${high} °C`;
  if (high !== null) return `≤ ${high} °C`;
  if (low !== null) return `≥ ${low} °C`;
  return "—";
}
