/** `scan` and `read` against the simulators (Modbus TCP, and RTU over a PTY). */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type ScenarioInput, startRtuSlave, startTcpSlave, type TcpSlaveSim } from "@coldtrace/simulators";
import { openPtyPair, requireService } from "@coldtrace/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseRegisterRanges, readCommand, scanCommand } from "../../src/cli/commission.ts";

const scenario: ScenarioInput = {
  slaves: [
    {
      id: 2,
      size: 10,
      channels: [
        { register: 0, type: "int16", scale: 0.1, baseC: 4.6, noiseC: 0 },
        // The device's last register: reading two from here is exception 2 (mbpoll reads one).
        { register: 9, type: "int16", scale: 0.1, baseC: 3.3, noiseC: 0 },
      ],
    },
    {
      id: 4,
      channels: [
        { register: 100, function: 4, type: "float32", wordOrder: "CDAB", scale: 1, baseC: 4.5, noiseC: 0 },
      ],
    },
  ],
};

function collect() {
  const lines: string[] = [];
  return { lines, out: (l: string) => void lines.push(l), text: () => lines.join("\n") };
}

describe("commissioning over Modbus TCP", () => {
  let sim: TcpSlaveSim;
  beforeAll(async () => {
    sim = await startTcpSlave({ port: 0, scenario });
  });
  afterAll(async () => sim?.close());

  it("scan finds the slaves and shows their registers, with progress", async () => {
    const c = collect();
    const code = await scanCommand(
      {
        host: "127.0.0.1",
        tcpPort: sim.port,
        baudRate: 9600,
        parity: "none",
        fromId: 1,
        toId: 12,
        registers: "0-1",
      },
      c.out,
    );
    expect(code).toBe(0);
    // The TCP simulator, like a TCP/RTU gateway, answers exception 0x0B for ids with no slave:
    // scan must count that as absent.
    expect(c.text()).toContain("slave 2: answers");
    expect(c.text()).toContain("FC3 0-1: 0x002e 0x0000");
    expect(c.text()).toContain("slave 4: answers");
    expect(c.text()).toContain("… 10/12 ids scanned");
    expect(c.lines.at(-1)).toBe("done: 2 slave(s) found: 2, 4");
  });

  it("read shows the pair in all four word orders", async () => {
    const c = collect();
    const code = await readCommand(
      {
        host: "127.0.0.1",
        tcpPort: sim.port,
        slaveId: 4,
        register: 100,
        function: 4,
        type: "float32",
        wordOrder: "ABCD",
      },
      c.out,
    );
    expect(code).toBe(0);
    expect(c.text()).toContain("registers 100-101: 0x0000 0x4090");
    expect(c.text()).toMatch(/as configured \(float32 ABCD .*quality (ok|out_of_range|sensor_fault)/);
    const cdab = c.lines.find((l) => l.trimStart().startsWith("CDAB"))!;
    expect(cdab).toMatch(/ 4\.5$/);
    expect(c.lines.find((l) => l.trimStart().startsWith("ABCD"))).toContain("← configured");
  });

  it("read of a 16-bit probe on the device's last register reads just that register", async () => {
    const c = collect();
    const code = await readCommand(
      { host: "127.0.0.1", tcpPort: sim.port, slaveId: 2, register: 9, type: "int16", scale: 0.1 },
      c.out,
    );
    expect(code).toBe(0);
    expect(c.text()).toContain("register 9: 0x0021");
    expect(c.text()).toContain("raw 33 → 3.3 °C, quality ok");
    expect(c.text()).not.toContain("exception");
  });

  it("read flags a float in the wrong word order and names the order that gives a plausible value", async () => {
    const c = collect();
    const code = await readCommand(
      { host: "127.0.0.1", tcpPort: sim.port, slaveId: 4, register: 100, function: 4, type: "float32" },
      c.out,
    );
    expect(code).toBe(0);
    expect(c.text()).toMatch(
      /as configured \(float32 ABCD .*quality out_of_range \(a float no probe reports/,
    );
    expect(c.text()).toContain("→ wordOrder CDAB gives 4.5 °C");
  });

  it("read --config --probe uses the probe's settings (argv form, as cli/main.ts calls it)", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ct-commission-"));
    const file = path.join(dir, "agent.yaml");
    await writeFile(
      file,
      [
        "buses:",
        "  - id: tcp-1",
        "    type: modbus-tcp",
        "    host: 127.0.0.1",
        `    port: ${sim.port}`,
        "    probes:",
        "      - { id: fridge-top, unit: fridge-1, slaveId: 4, function: 4, register: 100, type: float32, wordOrder: CDAB }",
      ].join("\n"),
    );
    const written: string[] = [];
    const code = await readCommand(["--config", file, "--probe", "fridge-top"], {
      write: (s: string) => written.push(s),
    });
    expect(code).toBe(0);
    expect(written.join("")).toContain("raw 4.5 → 4.5 °C, quality ok");
  });

  it("exits 2 with usage on bad arguments and 1 when nothing answers", async () => {
    const c = collect();
    expect(await scanCommand(["--from", "0", "--host", "127.0.0.1"], c.out)).toBe(2);
    expect(await readCommand(["--bogus"], c.out)).toBe(2);
    expect(await readCommand({ config: "/nonexistent.yaml", probe: "x" }, c.out)).toBe(2);
    sim.setFault(2, { silent: true });
    const d = collect();
    expect(
      await readCommand(
        { host: "127.0.0.1", tcpPort: sim.port, slaveId: 2, register: 0, timeoutMs: 100 },
        d.out,
      ),
    ).toBe(1);
    expect(d.text()).toContain("no answer");
    sim.setFault(2, {});
  });

  it("parses register ranges and rejects more than 125", () => {
    expect(parseRegisterRanges("0-9,100")).toEqual([
      { start: 0, count: 10 },
      { start: 100, count: 1 },
    ]);
    expect(() => parseRegisterRanges("0-125")).toThrow(/at most 125/);
  });
});

const socat = await requireService("socat");
describe.skipIf(!socat.available)(`commissioning over RTU ${socat.reason}`, () => {
  it("scan finds slaves on a PTY bus", async () => {
    const pty = await openPtyPair();
    const sim = await startRtuSlave({ path: pty.b, baudRate: 19_200, scenario });
    try {
      const c = collect();
      const code = await scanCommand(
        { port: pty.a, baudRate: 19_200, parity: "none", fromId: 1, toId: 5, timeoutMs: 100 },
        c.out,
      );
      expect(code).toBe(0);
      expect(c.lines.at(-1)).toBe("done: 2 slave(s) found: 2, 4");
      expect(c.text()).toContain("FC3 0-1: 0x002e 0x0000");
    } finally {
      await sim.close();
      await pty.close();
    }
  });
});
