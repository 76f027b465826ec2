/** sd_notify through systemd-notify, received on a real unix datagram socket (socat plays systemd). */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import { requireService } from "@coldtrace/testkit";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { systemdNotifier } from "../../src/agent/index.ts";
import { tempDir } from "../helpers/tmp.ts";

const log = pino({ level: "silent" });
const socat = await requireService("socat");
const hasNotify = (() => {
  try {
    execFileSync("sh", ["-c", "command -v systemd-notify"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe("systemdNotifier without systemd", () => {
  it("does nothing when NOTIFY_SOCKET is not set", () => {
    const n = systemdNotifier(log, {});
    expect(n.enabled).toBe(false);
    expect(n.watchdogIntervalMs).toBeNull();
    n.ready();
    n.startWatchdog();
    n.close();
  });

  it("pings at half of WatchdogSec, and not for another pid", () => {
    expect(systemdNotifier(log, { NOTIFY_SOCKET: "/x", WATCHDOG_USEC: "30000000" }).watchdogIntervalMs).toBe(
      15_000,
    );
    expect(
      systemdNotifier(log, { NOTIFY_SOCKET: "/x", WATCHDOG_USEC: "30000000", WATCHDOG_PID: "1" })
        .watchdogIntervalMs,
    ).toBeNull();
  });
});

describe.skipIf(!socat.available || !hasNotify)(
  `systemdNotifier over a notify socket ${socat.reason}`,
  () => {
    let tmp: ReturnType<typeof tempDir>;
    let listener: ChildProcess;
    let received = "";
    let sock: string;

    beforeEach(async () => {
      tmp = tempDir();
      sock = join(tmp.dir, "notify.sock");
      received = "";
      listener = spawn("socat", ["-u", `UNIX-RECV:${sock}`, "STDOUT"], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      listener.stdout?.on("data", (d) => {
        received += String(d);
      });
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        try {
          execFileSync("test", ["-S", sock]);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    });

    afterEach(() => {
      listener.kill();
      tmp.remove();
    });

    const waitFor = async (text: string) => {
      const deadline = Date.now() + 10_000;
      while (!received.includes(text)) {
        if (Date.now() > deadline) throw new Error(`no ${text} received (got ${JSON.stringify(received)})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    it("sends READY=1 with our pid, then WATCHDOG=1 pings", async () => {
      const n = systemdNotifier(log, { NOTIFY_SOCKET: sock, WATCHDOG_USEC: "2000000" });
      expect(n.watchdogIntervalMs).toBe(1000);
      n.ready("running");
      await waitFor("READY=1");
      expect(received).toContain(`MAINPID=${process.pid}`);
      expect(received).toContain("STATUS=running");
      n.startWatchdog();
      await waitFor("WATCHDOG=1");
      n.close();
    });
  },
);
