/**
 * The ReadingStore contract (aedes-persistence style): every backend runs this same suite
 * against a real database. Tests share one store per backend and keep apart by using fresh
 * agent, unit and probe ids.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Quality, ReadingStore, StoredReading } from "../../src/storage/types.ts";

/** 2026-01-01T00:00:00Z: a valid contract epoch, aligned to every bucket size used here. */
export const T0 = Date.UTC(2026, 0, 1);

export function uid(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export interface Fixture {
  agentId: string;
  siteId: string;
  unitId: string;
  reading(seq: number, over?: Partial<StoredReading>): StoredReading;
}

export function fixture(): Fixture {
  const agentId = uid("agent");
  const siteId = uid("site");
  const unitId = uid("unit");
  return {
    agentId,
    siteId,
    unitId,
    reading(seq, over = {}) {
      return {
        agentId,
        seq,
        siteId,
        unitId,
        probeId: "p1",
        observedAt: T0 + seq * 1000,
        receivedAt: T0 + seq * 1000 + 250,
        tempC: 4 + (seq % 10) / 10,
        quality: "ok" as Quality,
        backfill: false,
        ...over,
      };
    },
  };
}

const ALL = { from: T0 - 86_400_000, to: T0 + 30 * 86_400_000 };

export function readingStoreContract(name: string, make: () => Promise<ReadingStore>): void {
  describe(`ReadingStore contract: ${name}`, () => {
    let store: ReadingStore;
    beforeAll(async () => {
      store = await make();
    });
    afterAll(async () => {
      await store?.close();
    });

    it("returns appended readings from range, field for field", async () => {
      const f = fixture();
      const batch = [
        f.reading(1),
        f.reading(2, { tempC: null, quality: "comm_error" }),
        f.reading(3, { backfill: true, tempC: -18.25 }),
      ];
      const res = await store.append(batch);
      expect(res).toEqual({ inserted: batch, duplicates: 0 });
      expect(await store.range({ unitId: f.unitId, ...ALL })).toEqual(batch);
    });

    it("counts a reading repeated within one batch once", async () => {
      const f = fixture();
      const res = await store.append([f.reading(1), f.reading(2), f.reading(1), f.reading(2)]);
      expect(res.inserted.map((r) => r.seq)).toEqual([1, 2]);
      expect(res.duplicates).toBe(2);
      expect((await store.range({ unitId: f.unitId, ...ALL })).map((r) => r.seq)).toEqual([1, 2]);
    });

    it("treats a reading seen in an earlier batch as a duplicate, and keeps the first copy", async () => {
      const f = fixture();
      await store.append([f.reading(1), f.reading(2)]);
      // A resend after a lost PUBACK: same (agentId, seq), even if a field differs.
      const res = await store.append([f.reading(2, { tempC: 99 }), f.reading(3)]);
      expect(res.inserted).toEqual([f.reading(3)]);
      expect(res.duplicates).toBe(1);
      const got = await store.range({ unitId: f.unitId, ...ALL });
      expect(got.map((r) => [r.seq, r.tempC])).toEqual([
        [1, f.reading(1).tempC],
        [2, f.reading(2).tempC],
        [3, f.reading(3).tempC],
      ]);
      expect((await store.append([f.reading(1), f.reading(2), f.reading(3)])).duplicates).toBe(3);
    });

    it("keeps the same seq of two different agents apart", async () => {
      const f = fixture();
      const other = { agentId: uid("agent"), probeId: "p2" };
      const res = await store.append([f.reading(7), f.reading(7, other)]);
      expect(res.duplicates).toBe(0);
      expect(await store.range({ unitId: f.unitId, ...ALL })).toHaveLength(2);
    });

    it("orders late and out-of-order readings by event time, then probe", async () => {
      const f = fixture();
      // Live readings first, then the outbox backfill of earlier ones, then a reading out of order.
      await store.append([f.reading(10), f.reading(11), f.reading(10, { seq: 12, probeId: "p0" })]);
      await store.append([f.reading(3, { backfill: true }), f.reading(1, { backfill: true })]);
      await store.append([
        f.reading(5, { probeId: "p2" }),
        f.reading(13, { observedAt: T0 + 5000, probeId: "p1" }),
      ]);
      const got = await store.range({ unitId: f.unitId, ...ALL });
      expect(got.map((r) => [r.observedAt - T0, r.probeId, r.seq])).toEqual([
        [1000, "p1", 1],
        [3000, "p1", 3],
        [5000, "p1", 13],
        [5000, "p2", 5],
        [10_000, "p0", 12],
        [10_000, "p1", 10],
        [11_000, "p1", 11],
      ]);
    });

    it("filters range by half-open time, probe and site, and honours limit", async () => {
      const f = fixture();
      const batch = [1, 2, 3, 4, 5, 6].map((s) => f.reading(s, { probeId: s % 2 ? "p1" : "p2" }));
      await store.append(batch);
      const seqs = (rs: StoredReading[]) => rs.map((r) => r.seq);
      expect(seqs(await store.range({ unitId: f.unitId, from: T0 + 2000, to: T0 + 5000 }))).toEqual([
        2, 3, 4,
      ]);
      expect(seqs(await store.range({ unitId: f.unitId, probeId: "p2", ...ALL }))).toEqual([2, 4, 6]);
      expect(seqs(await store.range({ unitId: f.unitId, siteId: f.siteId, ...ALL, limit: 4 }))).toEqual([
        1, 2, 3, 4,
      ]);
      expect(await store.range({ unitId: f.unitId, siteId: uid("elsewhere"), ...ALL })).toEqual([]);
      expect(await store.range({ unitId: uid("unit"), ...ALL })).toEqual([]);
    });

    it("downsamples ok readings to per-bucket min/max/mean/count, excluding faults and nulls", async () => {
      const f = fixture();
      const minute = 60_000;
      const at = (m: number, s: number) => T0 + m * minute + s * 1000;
      let seq = 0;
      const r = (m: number, s: number, probeId: string, tempC: number | null, quality: Quality = "ok") =>
        f.reading(++seq, { observedAt: at(m, s), probeId, tempC, quality });
      await store.append([
        // minute 0, p1: 4, 5, 6  -> min 4, max 6, mean 5, count 3
        r(0, 0, "p1", 4),
        r(0, 20, "p1", 5),
        r(0, 59, "p1", 6),
        // minute 0, p2: 2.5 and a fault with a value (excluded) and a comm error without one (excluded)
        r(0, 10, "p2", 2.5),
        r(0, 30, "p2", 40, "sensor_fault"),
        r(0, 40, "p2", null, "comm_error"),
        // minute 1: nothing ok at all -> no bucket
        r(1, 5, "p1", 85, "out_of_range"),
        // minute 2, p1: -1, 3 -> mean 1; arrives out of order
        r(2, 30, "p1", 3),
        r(2, 0, "p1", -1),
        // minute 3, p1: 8.5 (outside the query below)
        r(3, 0, "p1", 8.5),
      ]);
      const buckets = await store.downsample({ unitId: f.unitId, from: T0, to: at(3, 0), bucketMs: minute });
      expect(buckets).toEqual([
        { start: T0, probeId: "p1", min: 4, max: 6, mean: 5, count: 3 },
        { start: T0, probeId: "p2", min: 2.5, max: 2.5, mean: 2.5, count: 1 },
        { start: T0 + 2 * minute, probeId: "p1", min: -1, max: 3, mean: 1, count: 2 },
      ]);
      const p1Hourly = await store.downsample({
        unitId: f.unitId,
        probeId: "p1",
        ...ALL,
        bucketMs: 3_600_000,
      });
      expect(p1Hourly).toHaveLength(1);
      expect(p1Hourly[0]).toMatchObject({ start: T0, probeId: "p1", min: -1, max: 8.5, count: 6 });
      expect(p1Hourly[0]?.mean).toBeCloseTo((4 + 5 + 6 + 3 - 1 + 8.5) / 6, 9);
    });

    it("starts buckets on epoch multiples of bucketMs, whatever `from` is", async () => {
      const f = fixture();
      await store.append([f.reading(1, { observedAt: T0 + 7 * 60_000 + 1 })]);
      const got = await store.downsample({
        unitId: f.unitId,
        from: T0 + 60_000,
        to: T0 + 3_600_000,
        bucketMs: 300_000,
      });
      expect(got.map((b) => b.start)).toEqual([T0 + 300_000]);
    });

    it("reports the latest reading per probe, faults included, and ignores late older data", async () => {
      const f = fixture();
      await store.append([f.reading(5), f.reading(6, { probeId: "p2" }), f.reading(7)]);
      await store.append([f.reading(8, { probeId: "p2", tempC: null, quality: "sensor_fault" })]);
      // Backfill of older readings must not replace the latest.
      await store.append([
        f.reading(1, { seq: 9, backfill: true }),
        f.reading(2, { seq: 10, probeId: "p2" }),
      ]);
      const latest = await store.latest(f.unitId);
      expect(latest).toEqual([
        f.reading(7),
        f.reading(8, { probeId: "p2", tempC: null, quality: "sensor_fault" }),
      ]);
      expect(await store.latest(uid("unit"))).toEqual([]);
    });

    it("counts an agent's sequence numbers that are not stored, within a range", async () => {
      const f = fixture();
      const other = fixture();
      await store.append([1, 2, 3, 5, 8].map((seq) => f.reading(seq)));
      await store.append([4, 6].map((seq) => other.reading(seq)));
      expect(await store.missingSeqs(f.agentId, 1, 3)).toBe(0);
      expect(await store.missingSeqs(f.agentId, 1, 8)).toBe(3); // 4, 6, 7
      expect(await store.missingSeqs(f.agentId, 4, 4)).toBe(1); // another agent's 4 does not count
      expect(await store.missingSeqs(f.agentId, 9, 20)).toBe(12);
      expect(await store.missingSeqs(uid("agent"), 1, 5)).toBe(5);
    });

    it("appends a large batch once and reports every reading of a resend as duplicate", async () => {
      const f = fixture();
      const n = 20_000;
      const probes = ["p1", "p2", "p3", "p4"];
      // 4 probes polled every 4 s: 5,000 observations each, nearly 5.6 hours.
      const batch = Array.from({ length: n }, (_, i) =>
        f.reading(i + 1, { probeId: probes[i % 4] as string, observedAt: T0 + Math.floor(i / 4) * 4000 }),
      );
      const res = await store.append(batch);
      expect(res.duplicates).toBe(0);
      expect(res.inserted).toHaveLength(n);
      const again = await store.append(batch.slice(5000, 15_000));
      expect(again).toEqual({ inserted: [], duplicates: 10_000 });
      const got = await store.range({ unitId: f.unitId, ...ALL });
      expect(got).toHaveLength(n);
      expect(got[0]).toEqual(batch[0]);
      expect(got[n - 1]).toEqual(batch[n - 1]);
      const buckets = await store.downsample({ unitId: f.unitId, ...ALL, bucketMs: 3_600_000 });
      expect(buckets.reduce((sum, b) => sum + b.count, 0)).toBe(n);
      expect(new Set(buckets.map((b) => b.probeId))).toEqual(new Set(probes));
    });

    it("returns an empty result for an empty batch", async () => {
      expect(await store.append([])).toEqual({ inserted: [], duplicates: 0 });
    });
  });
}
