/** The real CLI as a child process: exit codes, whole error lists, no stack traces, status. */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { Outbox } from "../../src/outbox/index.ts";
import { validConfig } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("coldtrace-agent CLI", () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir();
  });
  afterAll(() => tmp.remove());

  it("check-config prints every problem and exits 2 without a stack trace", async () => {
    const doc = validConfig();
    delete doc.agent.id;
    doc.buses[0].probes[1].register = -1;
    doc.mqtt.url = "nope";
    const file = join(tmp.dir, "bad.yaml");
    writeFileSync(file, stringify(doc));
    const r = await cli("check-config", "--config", file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: 3 problems`);
    expect(r.stderr).toContain("agent.id: expected string, got nothing");
    expect(r.stderr).toContain("buses[0].probes[1].register:");
    expect(r.stderr).toContain("mqtt.url:");
    expect(r.stderr).toContain("CT_CFG_INVALID");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("check-config exits 2 on a missing file and 0 on a good one", async () => {
    const missing = await cli("check-config", "--config", join(tmp.dir, "none.yaml"));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("CT_CFG_UNREADABLE");
    const file = join(tmp.dir, "good.yaml");
    const doc = validConfig();
    doc.agent.dataDir = tmp.dir;
    writeFileSync(file, stringify(doc));
    const ok = await cli("check-config", "--config", file);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("OK");
  });

  it("status reads the outbox of a (running) agent", async () => {
    const file = join(tmp.dir, "status.yaml");
    const doc = validConfig();
    doc.agent.dataDir = tmp.dir;
    writeFileSync(file, stringify(doc));
    const box = Outbox.open({ path: join(tmp.dir, "outbox.db"), agentId: "pi-1", maxReadings: 1000 });
    box.append([
      { probeId: "fridge-2-top", unitId: "fridge-2", observedAt: 1_764_057_600_000, tempC: 4, quality: "ok" },
    ]);
    box.writeStatus({
      pid: process.pid,
      connected: false,
      lastPublishAt: null,
      probes: [
        {
          probeId: "box-7-core",
          unitId: "box-7",
          consecutiveFailures: 4,
          calibrationOverdue: false,
          faults: { sensor_fault: 0, out_of_range: 0, comm_error: 4, stale: 0 },
          lastOkAt: null,
        },
      ],
      clock: {
        state: "unsynchronised",
        source: "timesyncd",
        since: 1_764_057_600_000,
        lastJump: null,
        untrustedPending: 1,
      },
    });
    const r = await cli("status", "--config", file);
    box.close();
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`running (pid ${process.pid})`);
    expect(r.stdout).toContain("1 reading(s) waiting");
    expect(r.stdout).toContain("oldest unsent 2025-11-25T08:00:00.000Z");
    expect(r.stdout).toContain("last publish  never");
    expect(r.stdout).toMatch(/box-7-core\s+box-7\s+FAULT \(4 consecutive\); comm_error 4/);
    expect(r.stdout).toMatch(
      /clock\s+NOT SYNCHRONISED \(timesyncd\), since 2025-11-25T08:00:00.000Z .*; 1 reading\(s\) with an untrusted time waiting/,
    );
  });

  it("dispatches scan and read to the commissioning commands", async () => {
    const scan = await cli("scan");
    expect(scan.code).toBe(2);
    expect(scan.stdout + scan.stderr).toContain("usage: coldtrace-agent scan");
    const read = await cli("read", "--help");
    expect(read.stdout + read.stderr).toContain("usage: coldtrace-agent read");
  });

  it("rejects unknown commands and options with exit 2", async () => {
    expect((await cli("fly")).code).toBe(2);
    expect((await cli("status", "--bogus")).code).toBe(2);
  });
});
