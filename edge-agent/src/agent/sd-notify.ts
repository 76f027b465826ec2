/**
 * systemd readiness and watchdog (sd_notify(3)) for `Type=notify` + `WatchdogSec=`.
 *
 * sd_notify is a datagram on the unix socket in $NOTIFY_SOCKET; Node has no unix-datagram
 * sockets, so we run systemd's own `systemd-notify` binary with `--pid=<our pid>` (the unit
 * sets `NotifyAccess=all`, because the datagram comes from that helper process, not from us).
 * A native npm binding would save the fork but adds a compiled dependency to every Pi image;
 * the watchdog fires every WatchdogSec/2 (15 s by default), so one short fork is cheap.
 * Known limit: systemd attributes a notification by the sender's cgroup, which a very
 * short-lived helper can race on old systemd (< 254); `--pid` makes READY=1 unambiguous.
 *
 * The watchdog is fed from the event loop's own timer: if the loop stalls (a hung sync call,
 * a runaway handler), the pings stop and systemd restarts the agent.
 * Without $NOTIFY_SOCKET (not under systemd, tests) everything here is a no-op.
 */
import { execFile } from "node:child_process";
import type { Logger } from "pino";

export interface SystemdNotifier {
  /** True when running under systemd with a notify socket. */
  readonly enabled: boolean;
  /** Watchdog ping interval in ms, or null when systemd did not ask for one. */
  readonly watchdogIntervalMs: number | null;
  ready(status?: string): void;
  stopping(): void;
  /** Start pinging WATCHDOG=1 at half of WatchdogSec. */
  startWatchdog(): void;
  close(): void;
}

export function systemdNotifier(log: Logger, env: NodeJS.ProcessEnv = process.env): SystemdNotifier {
  const enabled = Boolean(env.NOTIFY_SOCKET);
  const usec = Number(env.WATCHDOG_USEC ?? 0);
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
  const watchdogIntervalMs = enabled && usec > 0 && forUs ? Math.max(1000, Math.floor(usec / 2000)) : null;
  let timer: NodeJS.Timeout | undefined;
  let warned = false;

  const send = (...fields: string[]) => {
    if (!enabled) return;
    const childEnv = { PATH: process.env.PATH, ...env };
    execFile("systemd-notify", [`--pid=${process.pid}`, ...fields], { env: childEnv }, (err) => {
      if (err && !warned) {
        warned = true;
        log.warn({ err }, "systemd-notify failed; is systemd installed?");
      }
    });
  };

  return {
    enabled,
    watchdogIntervalMs,
    ready(status) {
      send("READY=1", ...(status ? [`STATUS=${status}`] : []));
    },
    stopping() {
      send("STOPPING=1");
    },
    startWatchdog() {
      if (watchdogIntervalMs === null || timer) return;
      timer = setInterval(() => send("WATCHDOG=1"), watchdogIntervalMs);
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
