/** The outbox on a real SQLite file: sequence numbers, eviction with gap records, ack. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gapRecord } from "@coldtrace/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type NewReading, Outbox, readOutboxSnapshot } from "../../src/outbox/index.ts";
import { tempDir } from "../helpers/tmp.ts";

const T0 = 1_764_057_600_000;

function reading(i: number, probeId = "fridge-2-top", unitId = "fridge-2"): NewReading {
  return { probeId, unitId, observedAt: T0 + i * 10_000, tempC: 4 + (i % 10) / 10, quality: "ok" };
}

describe("Outbox", () => {
  let tmp: ReturnType<typeof tempDir>;
  let path: string;
  const open = (maxReadings = 1000, evictChunk?: number) =>
    Outbox.open({ path, agentId: "pi-1", maxReadings, evictChunk, now: () => T0 + 1 });

  beforeEach(() => {
    tmp = tempDir();
    path = join(tmp.dir, "outbox.db");
  });
  afterEach(() => tmp.remove());

  it("numbers readings from 1 and keeps the counter monotonic across reopen", () => {
    const a = open();
    expect(a.append([reading(0), reading(1)]).readings.map((r) => r.seq)).toEqual([1, 2]);
    a.ack([1, 2]);
    a.close();
    const b = open();
    expect(b.nextSeq).toBe(3);
    expect(b.append([reading(2)]).readings[0]?.seq).toBe(3);
    expect(b.stats()).toMatchObject({ depth: 1, nextSeq: 4 });
    b.close();
  });

  it("makes its data folder on first start", () => {
    path = join(tmp.dir, "not", "yet", "there", "outbox.db");
    const a = open();
    expect(a.append([reading(0)]).readings[0]?.seq).toBe(1);
    a.close();
  });

  describe("sequence numbers after an unclean stop", () => {
    const openOn = (bootId: string) =>
      Outbox.open({ path, agentId: "pi-1", maxReadings: 1000, seqReserveBlock: 100, bootId, now: () => T0 });

    it("continue after a crash within the same boot (kill -9 keeps the WAL)", () => {
      const a = openOn("boot-1");
      a.append([reading(0), reading(1)]);
      // No close(): the process died. A new process opens the file in the same boot.
      const b = openOn("boot-1");
      expect(b.skippedSeqs).toBe(0);
      expect(b.append([reading(2)]).readings[0]?.seq).toBe(3);
      b.close();
      a.close();
    });

    it("resume after the durable reservation when the box rebooted (power loss may have lost the WAL tail)", () => {
      const a = openOn("boot-1");
      a.append(Array.from({ length: 150 }, (_, i) => reading(i)));
      // Numbers up to 150 + 100 are reserved durably; the power cut could roll nextSeq back.
      const b = openOn("boot-2");
      expect(b.skippedSeqs).toBeGreaterThan(0);
      const first = b.append([reading(200)]).readings[0]?.seq ?? 0;
      expect(first).toBe(251);
      b.close();
      a.close();
    });

    it("continue without a skip after a clean close, even across a reboot", () => {
      const a = openOn("boot-1");
      a.append([reading(0)]);
      a.close();
      const b = openOn("boot-2");
      expect(b.skippedSeqs).toBe(0);
      expect(b.append([reading(1)]).readings[0]?.seq).toBe(2);
      b.close();
    });
  });

  it("keeps rows until they are acked, and returns them oldest first", () => {
    const box = open();
    box.append([reading(0), reading(1), reading(2)]);
    expect(box.pendingReadings(0, 10).map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(box.ack([2])).toBe(1);
    expect(box.pendingReadings(0, 10).map((r) => r.seq)).toEqual([1, 3]);
    expect(box.pendingReadings(1, 10, 3).map((r) => r.seq)).toEqual([]);
    expect(box.ack([2])).toBe(0);
    expect(box.stats()).toMatchObject({ depth: 2, oldestObservedAt: T0 });
    box.close();
    // Unacked rows survive a reopen.
    const again = open();
    expect(again.pendingReadings(0, 10).map((r) => r.seq)).toEqual([1, 3]);
    again.close();
  });

  it("evicts the oldest readings past the bound and writes a gap record naming them", () => {
    const box = open(10, 4);
    box.append(
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => reading(i, i % 2 ? "box-7-lid" : "box-7-core", "box-7")),
    );
    expect(box.stats().depth).toBe(10);
    const { gaps } = box.append([reading(10, "fridge-2-top", "fridge-2")]);
    expect(gaps).toHaveLength(1);
    const gap = gaps[0];
    expect(gapRecord.parse(gap)).toEqual(gap);
    expect(gap).toMatchObject({
      agentId: "pi-1",
      reason: "outbox_evicted",
      unitIds: ["box-7"],
      probeIds: ["box-7-core", "box-7-lid"],
      fromSeq: 1,
      toSeq: 4,
      fromObservedAt: T0,
      toObservedAt: T0 + 30_000,
      droppedCount: 4,
    });
    expect(box.pendingReadings(0, 100)[0]?.seq).toBe(5);
    expect(box.stats()).toMatchObject({ depth: 7, evictedTotal: 4, gapDepth: 1 });
    // Gap records are durable and never evicted; they go only on ack.
    box.append(Array.from({ length: 30 }, (_, i) => reading(11 + i)));
    const pending = box.pendingGaps();
    expect(pending.length).toBeGreaterThan(1);
    expect(pending[0]?.gapId).toBe(gap?.gapId);
    box.close();
    const again = open(10, 4);
    expect(again.pendingGaps().map((g) => g.gapId)).toEqual(pending.map((g) => g.gapId));
    again.ackGap(gap?.gapId ?? "");
    expect(again.pendingGaps()).toHaveLength(pending.length - 1);
    again.close();
  });

  it("gap ranges chain without holes across several evictions", () => {
    const box = open(5, 2);
    const gaps = [];
    for (let i = 0; i < 20; i++) gaps.push(...box.append([reading(i)]).gaps);
    const evicted = gaps.reduce((n, g) => n + g.droppedCount, 0);
    expect(evicted).toBe(20 - box.stats().depth);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]?.fromSeq).toBe((gaps[i - 1]?.toSeq ?? 0) + 1);
    expect(box.pendingReadings(0, 100)[0]?.seq).toBe((gaps.at(-1)?.toSeq ?? 0) + 1);
    box.close();
  });

  it("stores only contract-valid temperatures: an unusable ok value becomes out_of_range", () => {
    const box = open();
    const bad = { ...reading(0), tempC: Number.NaN };
    const hot = { ...reading(1), tempC: 5000 };
    const fault = { ...reading(2), tempC: Number.POSITIVE_INFINITY, quality: "sensor_fault" as const };
    box.append([bad, hot, fault, { ...reading(3), observedAt: T0 + 0.4 }]);
    expect(box.pendingReadings(0, 10)).toEqual([
      expect.objectContaining({ seq: 1, tempC: null, quality: "out_of_range" }),
      expect.objectContaining({ seq: 2, tempC: null, quality: "out_of_range" }),
      expect.objectContaining({ seq: 3, tempC: null, quality: "sensor_fault" }),
      expect.objectContaining({ seq: 4, tempC: 4.3, quality: "ok", observedAt: T0 }),
    ]);
    box.close();
  });

  it("can be read by another connection while open (status command)", () => {
    const box = open();
    box.append([reading(0), reading(1)]);
    box.writeStatus({ lastPublishAt: T0 + 5 });
    const snap = readOutboxSnapshot(path);
    expect(snap).toMatchObject({ depth: 2, nextSeq: 3, oldestObservedAt: T0 });
    expect(snap.status.lastPublishAt?.value).toBe(T0 + 5);
    box.close();
  });

  it("fails with CT_OUTBOX_IO naming the file when it cannot open", () => {
    // The data folder's place is taken by a plain file: it can be neither made nor opened.
    writeFileSync(join(tmp.dir, "occupied"), "not a folder");
    const bad = join(tmp.dir, "occupied", "x.db");
    expect(() => Outbox.open({ path: bad, agentId: "pi-1", maxReadings: 10 })).toThrow(
      expect.objectContaining({ code: "CT_OUTBOX_IO", message: expect.stringContaining(bad) }),
    );
  });
});
