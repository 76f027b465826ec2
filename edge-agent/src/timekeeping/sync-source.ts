/**
 * Whether the box's wall clock is synchronised, from the time service that keeps it. A
 * Raspberry Pi has no real-time clock: it boots with the time it had at shutdown (fake-hwclock,
 * or timesyncd's saved clock) and keeps it until NTP answers, which may be never on a store
 * network that blocks it.
 *
 *   timesyncd    /run/systemd/timesync/synchronized exists once systemd-timesyncd has synced
 *                since boot, and is touched on every sync (systemd-timesyncd.service(8)):
 *                one stat(2), no process. Its mtime is the last sync.
 *   timedatectl  `timedatectl show --property=NTPSynchronized --value`: systemd-timedated reads
 *                the kernel's NTP status (adjtimex STA_UNSYNC), which chronyd and ntpd keep too.
 *                Works for any NTP client, costs a short process every check.
 *   none         the agent cannot tell (state "unknown"); only jumps are detected.
 *
 * Why not adjtimex(2) directly: Node has no binding, a native addon is another compiled
 * dependency on every image, and the unit's ProtectClock= denies the clock syscalls anyway.
 */
import { execFile } from "node:child_process";
import { statSync } from "node:fs";

export type SyncState = "synchronised" | "unsynchronised" | "unknown";

export interface SyncReport {
  state: SyncState;
  /** Wall time of the last successful synchronisation, when the source knows it. */
  lastSyncAt?: number;
}

/** The seam: tests pass a source whose answer they set. */
export interface ClockSyncSource {
  readonly name: string;
  check(): Promise<SyncReport>;
}

export const TIMESYNCD_FLAG = "/run/systemd/timesync/synchronized";

/** systemd-timesyncd's flag file. */
export function timesyncdSource(flag = TIMESYNCD_FLAG): ClockSyncSource {
  return {
    name: "timesyncd",
    async check() {
      try {
        return { state: "synchronised", lastSyncAt: statSync(flag).mtimeMs };
      } catch (err) {
        return { state: (err as NodeJS.ErrnoException).code === "ENOENT" ? "unsynchronised" : "unknown" };
      }
    },
  };
}

type Exec = (file: string, args: string[]) => Promise<string>;

const execText: Exec = (file, args) =>
  new Promise((resolve, reject) =>
    execFile(file, args, { timeout: 5000 }, (err, stdout) => (err ? reject(err) : resolve(String(stdout)))),
  );

/** The kernel's NTP status through timedatectl (systemd-timedated over D-Bus). */
export function timedatectlSource(exec: Exec = execText): ClockSyncSource {
  return {
    name: "timedatectl",
    async check() {
      try {
        const out = (await exec("timedatectl", ["show", "--property=NTPSynchronized", "--value"])).trim();
        if (out === "yes") return { state: "synchronised" };
        if (out === "no") return { state: "unsynchronised" };
        return { state: "unknown" };
      } catch {
        return { state: "unknown" };
      }
    },
  };
}

export const noSyncSource: ClockSyncSource = {
  name: "none",
  check: async () => ({ state: "unknown" }),
};

/** Runtime traces of the other NTP clients timedatectl reports on (chronyd, ntpd). */
export const OTHER_NTP_CLIENTS = ["/run/chrony", "/run/ntpd.pid", "/var/run/ntpd.pid"];

/**
 * The source for the configured mode. `auto`: timesyncd when it runs (its state folder
 * exists); else timedatectl when chronyd or ntpd runs and timedatectl answers; else none.
 * Without a sign of an NTP client nothing is spawned: starting a child process costs the
 * agent about 2.5 MiB of RSS for good (bench:agent).
 */
export async function syncSourceFor(
  mode: "auto" | "timesyncd" | "timedatectl" | "none",
  opts: { flag?: string; exec?: Exec; otherClients?: readonly string[] } = {},
): Promise<ClockSyncSource> {
  const flag = opts.flag ?? TIMESYNCD_FLAG;
  const exists = (path: string) => {
    try {
      statSync(path);
      return true;
    } catch {
      return false;
    }
  };
  switch (mode) {
    case "timesyncd":
      return timesyncdSource(flag);
    case "timedatectl":
      return timedatectlSource(opts.exec);
    case "none":
      return noSyncSource;
    case "auto": {
      if (exists(flag.slice(0, flag.lastIndexOf("/")))) return timesyncdSource(flag);
      if (!(opts.otherClients ?? OTHER_NTP_CLIENTS).some(exists)) return noSyncSource;
      const t = timedatectlSource(opts.exec);
      return (await t.check()).state === "unknown" ? noSyncSource : t;
    }
  }
}
