/**
 * The commissioning traps end to end: the agent runtime with its real acquisition polling the
 * Modbus TCP simulator, publishing to a real broker (embedded aedes, and the machine's
 * Mosquitto) through a TCP proxy the test can cut.
 *   - a float32 probe configured with the wrong word order is never an ok reading, and the
 *     agent names the word order that fits;
 *   - one CRC error is retried: no comm_error reaches the gateway;
 *   - an outage on a full outbox gives one gap record for the evicted range, not one per cycle.
 */
import { randomBytes } from "node:crypto";
import { startTcpSlave, type TcpSlaveSim } from "@coldtrace/simulators";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createAcquisition } from "../../src/acquisition/index.ts";
import { Agent } from "../../src/agent/index.ts";
import { parseConfig } from "../../src/config/index.ts";
import { readOutboxSnapshot } from "../../src/outbox/index.ts";
import { captureLog, waitFor } from "../acquisition/helpers.ts";
import { onEachBroker } from "../helpers/brokers.ts";
import { subscribe, type TestSubscriber } from "../helpers/subscriber.ts";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.ts";
import { tempDir } from "../helpers/tmp.ts";

function trapsSuite(name: string, brokerUrl: () => string) {
  describe(`commissioning traps over ${name}`, () => {
    let tmp: ReturnType<typeof tempDir>;
    let sim: TcpSlaveSim;
    let proxy: TcpProxy;
    let sub: TestSubscriber;
    let agent: Agent | undefined;
    let siteId: string;
    const logs = captureLog();

    beforeEach(async () => {
      tmp = tempDir();
      siteId = `t-${randomBytes(4).toString("hex")}`;
      sim = await startTcpSlave({
        slaves: [
          {
            id: 1,
            channels: [
              ...Array.from({ length: 7 }, (_, i) => ({ register: i, baseC: 4 + i / 10, noiseC: 0 })),
              // A float probe whose vendor sends the low word first.
              {
                register: 20,
                type: "float32" as const,
                wordOrder: "CDAB" as const,
                scale: 1,
                baseC: 4.62,
                noiseC: 0,
              },
            ],
          },
        ],
      });
      proxy = await startTcpProxy(brokerUrl());
      sub = await subscribe(brokerUrl(), `ct/v1/${siteId}/#`);
    });

    afterEach(async () => {
      await agent?.stop();
      agent = undefined;
      await sub.clearRetained();
      await sub.close();
      await proxy.close();
      await sim.close();
      tmp.remove();
    });

    async function startAgent(maxReadings = 100_000) {
      const config = parseConfig(
        {
          agent: { id: "pi-traps", siteId, dataDir: tmp.dir },
          mqtt: { url: proxy.url, reconnect: { minMs: 20, maxMs: 100 }, batch: { delayMs: 10 } },
          outbox: { maxReadings },
          units: [{ id: "room-1", kind: "room" }],
          buses: [
            {
              id: "tcp-1",
              type: "modbus-tcp",
              host: "127.0.0.1",
              port: sim.port,
              timeoutMs: 200,
              probes: [
                ...Array.from({ length: 7 }, (_, i) => ({
                  id: `room-1-p${i}`,
                  unit: "room-1",
                  slaveId: 1,
                  register: i,
                  scale: 0.1,
                  intervalMs: 100,
                })),
                // The same float read with the default word order (4.62 → -1.5e14, out of range)
                // and with a byte swap (4.62 → 2.08e-32, which would round to 0 °C).
                {
                  id: "room-1-float",
                  unit: "room-1",
                  slaveId: 1,
                  register: 20,
                  type: "float32",
                  intervalMs: 100,
                },
                {
                  id: "room-1-float-badc",
                  unit: "room-1",
                  slaveId: 1,
                  register: 20,
                  type: "float32",
                  wordOrder: "BADC",
                  intervalMs: 100,
                },
              ],
            },
          ],
        },
        "traps.yaml",
      );
      const acquisition = createAcquisition(config.buses, { log: logs.log });
      agent = new Agent({ config, acquisition, log: logs.log });
      await agent.start();
      return agent;
    }

    const readingsOf = (probeId: string) =>
      sub.messages.flatMap((m) =>
        m.message.kind === "telemetry" ? m.message.payload.readings.filter((r) => r.probeId === probeId) : [],
      );

    it("never publishes a wrong-word-order float as ok, and names the order that fits", async () => {
      const mark = logs.lines.length;
      await startAgent();
      await sub.waitFor(
        () => readingsOf("room-1-float").length >= 5 && readingsOf("room-1-float-badc").length >= 5,
        "readings of the float probes",
      );
      for (const id of ["room-1-float", "room-1-float-badc"])
        expect(readingsOf(id).every((r) => r.quality === "out_of_range" && r.tempC === null)).toBe(true);
      const hints = logs.lines
        .slice(mark)
        .filter((l) => l.level === 40 && String(l.probeId).startsWith("room-1-float"));
      // Once per probe, not once per poll, each naming the order that gives 4.62 °C.
      expect(hints.map((h) => [h.probeId, h.msg, h.wordOrder])).toEqual(
        expect.arrayContaining([
          ["room-1-float", "probe value out of range in its word order", "ABCD"],
          ["room-1-float-badc", "probe value not plausible: wrong word order?", "BADC"],
        ]),
      );
      expect(hints).toHaveLength(2);
      for (const h of hints) expect(h.plausibleOrders).toEqual([{ order: "CDAB", tempC: 4.62 }]);
      expect(readingsOf("room-1-p0").every((r) => r.quality === "ok")).toBe(true);
    });

    it("retries one CRC error: no comm_error reaches the broker", async () => {
      await startAgent();
      await sub.waitFor(() => readingsOf("room-1-p0").length >= 3, "first readings");
      sim.setFault(1, { corruptNext: 1 });
      await waitFor(() => sim.slave(1).faults.corruptNext === 0, "the corrupted reply");
      const seen = readingsOf("room-1-p0").length;
      await sub.waitFor(() => readingsOf("room-1-p0").length >= seen + 3, "readings after it");
      const all = sub.messages.flatMap((m) =>
        m.message.kind === "telemetry" ? m.message.payload.readings : [],
      );
      expect(all.filter((r) => r.quality === "comm_error")).toEqual([]);
    });

    it("makes one gap record of an outage on a full outbox", async () => {
      const a = await startAgent(100);
      await sub.waitFor(() => readingsOf("room-1-p0").length >= 2, "connected and publishing");
      proxy.cut();
      // 8 probes every 100 ms into a 100-reading outbox: full after ~1.3 s, then an eviction
      // every poll cycle. Wait for a good dozen cycles of evictions.
      await waitFor(() => a.outbox.stats().evictedTotal >= 100, "evictions during the outage", 20_000);
      proxy.resume();
      await sub.waitFor((m) => m.some((x) => x.message.kind === "gap"), "the gap record");
      await waitFor(() => a.outbox.stats().depth < 50 && a.outbox.stats().gapDepth === 0, "drained");
      await a.stop();
      agent = undefined;
      const gaps = sub.messages.filter((m) => m.message.kind === "gap").map((m) => m.message.payload);
      const evicted = readOutboxEvicted(tmp.dir);
      expect(gaps).toHaveLength(1);
      expect(gaps[0]).toMatchObject({ reason: "outbox_evicted", droppedCount: evicted, unitIds: ["room-1"] });
      const g = gaps[0] as { fromSeq: number; toSeq: number };
      expect(g.toSeq - g.fromSeq + 1).toBe(evicted);
      // Everything not evicted arrived: the received seqs plus the gap cover 1 … last.
      const received = new Set(
        sub.messages.flatMap((m) =>
          m.message.kind === "telemetry" ? m.message.payload.readings.map((r) => r.seq) : [],
        ),
      );
      for (let seq = g.fromSeq; seq <= g.toSeq; seq++) received.add(seq);
      expect(Math.max(...received)).toBe(received.size);
    });
  });
}

function readOutboxEvicted(dir: string): number {
  return readOutboxSnapshot(`${dir}/outbox.db`).evictedTotal;
}

await onEachBroker(trapsSuite);
