/**
 * Local wall-clock times → epoch milliseconds, for inputs that come without a zone (ERP exports,
 * spreadsheet date cells) and are read in a zone the importer names. The wire itself is always
 * epoch ms (docs/protocol.md#times-units-numbers); no I/O here, only Intl.
 */

/** Milliseconds to add to a UTC instant to get the wall clock of `timeZone` at that instant. */
function zoneOffsetMs(timeZone: string, at: number): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(at);
  const n = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const wall = Date.UTC(n("year"), n("month") - 1, n("day"), n("hour"), n("minute"), n("second"));
  return wall - Math.floor(at / 1000) * 1000;
}

/**
 * A wall-clock time of `timeZone`, given as if it were UTC (`Date.UTC(y, m, d, h, min)`), as
 * epoch ms. The offset is taken again at the first guess, so a time next to a daylight-saving
 * change lands on the right side of it.
 */
export function wallClockToEpoch(wall: number, timeZone: string): number {
  const first = wall - zoneOffsetMs(timeZone, wall);
  return wall - zoneOffsetMs(timeZone, first);
}

/** Whether `timeZone` is an IANA zone name this runtime knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
    return true;
  } catch {
    return false;
  }
}
