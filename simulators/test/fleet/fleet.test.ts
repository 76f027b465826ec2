/**
 * The fleet generator speaks the contract: every message it sends passes decodeMessage, birth
 * and state come before telemetry, seq is one gap-free monotonic counter per agent, and an
 * injected excursion shows in exactly its simulated window.
 */
import { decodeMessage, type Message } from "@coldtrace/protocol";
import { type EmbeddedBroker, startEmbeddedBroker } from "@coldtrace/testkit";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fleet, fleetCommand } from "../../src/fleet/index.ts";

const T0 = 1_764_057_600_000;

describe("fleet generator", () => {
  let broker: EmbeddedBroker;
  let sub: MqttClient;
  const messages: Message[] = [];

  beforeAll(async () => {
    broker = await startEmbeddedBroker();
    sub = await connectAsync(broker.url, { clientId: "fleet-test-sub" });
    sub.on("message", (topic, payload) => messages.push(decodeMessage(topic, payload)));
    await sub.subscribeAsync("ct/v1/#", { qos: 1 });
  });
  afterAll(async () => {
    await sub?.endAsync();
    await broker?.close();
  });

  it("sends births, states and contract telemetry with monotonic seq and the injected excursion", async () => {
    const batches: { unitId: string; maxTempC: number }[] = [];
    const fleet = new Fleet({
      url: broker.url,
      sites: 2,
      units: 2,
      probes: 3,
      sitePrefix: "ft",
      intervalMs: 60_000,
      startAt: T0,
      batchMaxReadings: 7,
      excursion: { site: 1, unit: 0, afterMs: 5 * 60_000, durationMs: 3 * 60_000, tempC: 14 },
      onBatch: (b) => batches.push({ unitId: b.unitId, maxTempC: b.maxTempC }),
    });
    await fleet.start();
    const sent = await fleet.advanceTo(T0 + 10 * 60_000);
    expect(sent).toBe(2 * 2 * 3 * 10);
    await fleet.stop();
    // wait until the subscriber has every telemetry reading and both shutdown states
    const deadline = Date.now() + 10_000;
    const count = () =>
      messages.reduce((n, m) => n + (m.kind === "telemetry" ? m.payload.readings.length : 0), 0);
    while (
      (count() < sent ||
        messages.filter((m) => m.kind === "agentState" && m.payload.state === "offline").length < 2) &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(count()).toBe(sent);

    for (const a of fleet.agents) {
      const mine = messages.filter((m) => "agentId" in m.payload && m.payload.agentId === a.agentId);
      expect(mine[0]?.kind).toBe("birth");
      expect(mine[1]).toMatchObject({ kind: "agentState", payload: { state: "online" } });
      expect(mine.at(-1)).toMatchObject({
        kind: "agentState",
        payload: { state: "offline", reason: "shutdown" },
      });
      const seqs = mine.flatMap((m) => (m.kind === "telemetry" ? m.payload.readings.map((r) => r.seq) : []));
      expect(seqs.sort((x, y) => x - y)).toEqual(Array.from({ length: 2 * 3 * 10 }, (_, i) => i + 1));
    }
    const hot = messages.flatMap((m) =>
      m.kind === "telemetry"
        ? m.payload.readings
            .filter((r) => r.tempC !== null && r.tempC > 10)
            .map((r) => ({ unit: m.payload.unitId, t: r.observedAt }))
        : [],
    );
    expect(new Set(hot.map((h) => h.unit))).toEqual(new Set(["ft-2-u1"]));
    expect([...new Set(hot.map((h) => h.t))].sort()).toEqual([
      T0 + 5 * 60_000,
      T0 + 6 * 60_000,
      T0 + 7 * 60_000,
    ]);
    expect(batches.some((b) => b.unitId === "ft-2-u1" && b.maxTempC === 14)).toBe(true);
  });

  it("never simulates ahead of the clock: above 1× the CLI starts in the past and catches up", async () => {
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
    const seen: { t: number; receivedAt: number }[] = [];
    const onMessage = (topic: string, payload: Buffer) => {
      const m = decodeMessage(topic, payload);
      if (m.kind === "telemetry" && m.payload.agentId.startsWith("clk-"))
        for (const r of m.payload.readings) seen.push({ t: r.observedAt, receivedAt: Date.now() });
    };
    sub.on("message", onMessage);
    const started = Date.now();
    // 600× for 2 s of wall time: 20 simulated minutes, which must all lie in the past.
    const code = await fleetCommand(
      [
        "--url",
        broker.url,
        "--sites",
        "1",
        "--units",
        "1",
        "--probes",
        "1",
        "--speed",
        "600",
        "--duration-s",
        "2",
        "--prefix",
        "clk",
      ],
      io,
    );
    sub.off("message", onMessage);
    expect(code).toBe(0);
    expect(seen.length).toBeGreaterThan(60); // 10 s interval: ~120 readings in 20 sim minutes
    for (const r of seen) expect(r.t).toBeLessThanOrEqual(r.receivedAt);
    expect(Math.min(...seen.map((r) => r.t))).toBeLessThan(started - 15 * 60_000);
    expect(lines.join("\n")).toMatch(/simulated time starts at /);
  });

  it("refuses a --start in the future or unreadable", async () => {
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
    expect(await fleetCommand(["--url", broker.url, "--start", "2999-01-01T00:00:00Z"], io)).toBe(1);
    expect(await fleetCommand(["--url", broker.url, "--start", "yesterday"], io)).toBe(1);
    expect(lines.join("\n")).toContain("is in the future");
    expect(lines.join("\n")).toContain("expected an ISO time or -90m / -6h / -7d");
  });

  it("reports bad command-line arguments without exiting", async () => {
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
    expect(await fleetCommand(["--url", broker.url, "--sites", "zero"], io)).toBe(1);
    expect(lines.join("\n")).toContain("--sites: expected a positive number");
    expect(await fleetCommand([], io)).toBe(2);
  });
});
