/** Reconnect backoff: exponential, capped, jittered; time driven through the Clock seam. */
import { join } from "node:path";
import { Writable } from "node:stream";
import { freePort } from "@coldtrace/testkit";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { manualClock } from "../../src/clock.ts";
import { Outbox } from "../../src/outbox/index.ts";
import { Publisher } from "../../src/publisher/index.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("Publisher reconnect backoff", () => {
  it("doubles its ceiling from minMs up to maxMs, each delay drawn below it (full jitter)", async () => {
    const tmp = tempDir();
    const delays: number[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split("\n").filter(Boolean)) {
          const entry = JSON.parse(line) as { msg: string; delayMs?: number };
          if (entry.msg === "mqtt reconnect scheduled" && entry.delayMs !== undefined)
            delays.push(entry.delayMs);
        }
        done();
      },
    });
    const clock = manualClock();
    const outbox = Outbox.open({ path: join(tmp.dir, "outbox.db"), agentId: "pi-1", maxReadings: 100 });
    // Nothing listens on this port: every attempt fails at once.
    const url = `mqtt://127.0.0.1:${await freePort()}`;
    const draws = [0.5, 0.99, 0, 0.25, 0.75, 0.5];
    let draw = 0;
    const publisher = new Publisher({
      random: () => draws[draw++ % draws.length] ?? 0,
      siteId: "store-12",
      agentId: "pi-1",
      outbox,
      clock,
      log: pino({ level: "debug" }, sink),
      settings: {
        url,
        keepaliveSec: 10,
        connectTimeoutMs: 1000,
        reconnect: { minMs: 100, maxMs: 800 },
        batchMaxReadings: 10,
        batchDelayMs: 10,
        inflightWindow: 4,
      },
      birth: {
        agentId: "pi-1",
        siteId: "store-12",
        agentVersion: "0.1.0",
        configHash: "0".repeat(64),
        startedAt: clock.now(),
        units: [{ unitId: "fridge-2", kind: "fridge", probeIds: ["fridge-2-top"] }],
        probes: [
          {
            probeId: "fridge-2-top",
            unitId: "fridge-2",
            driver: "modbus-tcp",
            intervalMs: 10_000,
            calibrationOffsetC: 0,
            calibrationDueAt: null,
          },
        ],
      },
    });
    publisher.start();
    const ceilings = [100, 200, 400, 800, 800, 800];
    for (let i = 0; i < ceilings.length; i++) {
      while (delays.length <= i) await new Promise((r) => setTimeout(r, 5));
      // Nothing reconnects before the clock says so.
      expect(clock.pending()).toBe(1);
      clock.advance(delays[i] ?? 0);
    }
    await publisher.stop();
    outbox.close();
    tmp.remove();
    // Each delay is its draw times the ceiling: 0.5 × 100, 0.99 × 200, 0 × 400, …
    expect(delays.slice(0, ceilings.length)).toEqual(ceilings.map((c, i) => Math.round((draws[i] ?? 0) * c)));
  });
});
