/**
 * A pseudo-terminal pair made by `socat`, for serial tests: what is written to one end comes
 * out of the other, through the kernel's tty layer, just as with a USB RS-485 adapter.
 */
import { spawn } from "node:child_process";
import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ColdtraceError } from "@coldtrace/protocol";

export interface PtyPair {
  /** The end the code under test opens (the "agent" side). */
  a: string;
  /** The end the simulator opens. */
  b: string;
  close(): Promise<void>;
}

export async function openPtyPair(timeoutMs = 5000): Promise<PtyPair> {
  const dir = await mkdtemp(path.join(tmpdir(), "ct-pty-"));
  const a = path.join(dir, "a");
  const b = path.join(dir, "b");
  const child = spawn("socat", [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: "ignore" });
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await access(a);
      await access(b);
      break;
    } catch {
      if (exited || Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new ColdtraceError("CT_SERVICE_MISSING", "socat did not create the pty pair");
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    a,
    b,
    async close() {
      if (!exited) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await gone;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
