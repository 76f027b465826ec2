/**
 * The on-call roster: who is on call at a site at a given moment, from shifts in the site's
 * local time ("mon–fri 08:00–20:00: wang.li, zhao.min"; a shift whose end is not after its
 * start runs past midnight and belongs to the day it starts on).
 */
import { type Shift, weekdays } from "./config.ts";

/** Weekday index (mon = 0) and minute of the day at `at` in `timeZone`. */
export function localWeekMinute(at: number, timeZone: string): { day: number; minute: number } {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    weekday: "short",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  const day = weekdays.indexOf(get("weekday").toLowerCase().slice(0, 3) as (typeof weekdays)[number]);
  return { day, minute: Number(get("hour")) * 60 + Number(get("minute")) };
}

function minutesOf(t: string): number {
  const [h, m] = t.split(":").map(Number);
  return h! * 60 + m!;
}

/** People on call at `at`, in roster order, each once. */
export function onCallAt(shifts: readonly Shift[], timeZone: string, at: number): string[] {
  const { day, minute } = localWeekMinute(at, timeZone);
  const out = new Set<string>();
  for (const s of shifts) {
    const from = minutesOf(s.from);
    const to = minutesOf(s.to);
    const days = s.days.map((d) => weekdays.indexOf(d));
    const overnight = to <= from;
    const today = days.includes(day) && minute >= from && (overnight || minute < to);
    const fromYesterday = overnight && days.includes((day + 6) % 7) && minute < to;
    if (today || fromYesterday) for (const p of s.people) out.add(p);
  }
  return [...out];
}
