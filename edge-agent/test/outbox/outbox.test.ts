/** The outbox on a real SQLite file: sequence numbers, eviction with gap records, ack. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
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
    // Once the publisher has it, a record is never extended; gap records go only on ack.
    box.sealGap(gap?.gapId ?? "");
    box.append(Array.from({ length: 30 }, (_, i) => reading(11 + i)));
    const pending = box.pendingGaps();
    expect(pending).toHaveLength(2);
    expect(pending[0]).toEqual(gap);
    expect(pending[1]).toMatchObject({ fromSeq: 5, toSeq: 31, droppedCount: 27 });
    box.close();
    const again = open(10, 4);
    expect(again.pendingGaps().map((g) => g.gapId)).toEqual(pending.map((g) => g.gapId));
    again.ackGap(gap?.gapId ?? "");
    expect(again.pendingGaps()).toHaveLength(pending.length - 1);
    again.close();
  });

  it("makes one gap record of an outage on a full outbox, however many poll cycles it lasts", () => {
    const box = open(100, 1);
    for (let i = 0; i < 100; i++) box.append([reading(i)]);
    // 33 poll cycles of two probes while nothing can be sent: 33 evictions …
    const created = [];
    const extended = [];
    for (let cycle = 0; cycle < 33; cycle++) {
      const r = box.append([
        reading(100 + cycle * 2, "fridge-2-top"),
        reading(101 + cycle * 2, "box-7-core", "box-7"),
      ]);
      created.push(...r.gaps);
      extended.push(...r.extendedGaps);
    }
    // … one record, covering every evicted reading without a hole.
    const gaps = box.pendingGaps();
    expect(gaps).toHaveLength(1);
    expect(created).toHaveLength(1);
    expect(extended).toHaveLength(32);
    expect(gapRecord.parse(gaps[0])).toEqual(gaps[0]);
    expect(gaps[0]).toMatchObject({ fromSeq: 1, toSeq: 66, droppedCount: 66 });
    expect(box.stats().evictedTotal).toBe(66);
    expect(box.pendingReadings(0, 1)[0]?.seq).toBe(67);
    box.close();
  });

  it("starts a new record after readings were delivered in between", () => {
    const box = open(10, 2);
    for (let i = 0; i < 12; i++) box.append([reading(i)]);
    expect(box.pendingGaps().map((g) => [g.fromSeq, g.toSeq])).toEqual([[1, 2]]);
    // Connected for a moment: the oldest survivors were acknowledged, so the next eviction
    // does not follow the record directly.
    box.ack([3, 4]);
    for (let i = 12; i < 15; i++) box.append([reading(i)]);
    expect(box.pendingGaps().map((g) => [g.fromSeq, g.toSeq])).toEqual([
      [1, 2],
      [5, 6],
    ]);
    box.close();
  });

  it("bounds the gap table by merging the oldest records, never dropping one", () => {
    const box = Outbox.open({
      path,
      agentId: "pi-1",
      maxReadings: 10,
      evictChunk: 2,
      maxGapRecords: 3,
      now: () => T0,
    });
    let dropped = 0;
    for (let i = 0; i < 40; i++) {
      const r = box.append([reading(i, i % 3 ? "fridge-2-top" : "box-7-core", i % 3 ? "fridge-2" : "box-7")]);
      // As after a publish attempt each time: every record is sealed, none is extended.
      for (const g of r.gaps) box.sealGap(g.gapId);
      dropped += r.gaps.reduce((n, g) => n + g.droppedCount, 0);
    }
    const gaps = box.pendingGaps();
    expect(gaps).toHaveLength(3);
    expect(gaps.reduce((n, g) => n + g.droppedCount, 0)).toBe(dropped);
    expect(dropped).toBe(30);
    expect(Math.min(...gaps.map((g) => g.fromSeq))).toBe(1);
    expect(Math.max(...gaps.map((g) => g.toSeq))).toBe(30);
    for (const g of gaps) expect(gapRecord.parse(g)).toEqual(g);
    box.close();
  });

  it("opens an outbox written by an older agent, adding the new columns in place", () => {
    const old = new DatabaseSync(path);
    old.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
      CREATE TABLE readings (seq INTEGER PRIMARY KEY, unit_id TEXT NOT NULL, probe_id TEXT NOT NULL,
        observed_at INTEGER NOT NULL, temp_c REAL, quality TEXT NOT NULL) STRICT;
      CREATE TABLE gaps (gap_id TEXT PRIMARY KEY, payload TEXT NOT NULL, created_at INTEGER NOT NULL) STRICT;
      INSERT INTO meta (key, value) VALUES ('nextSeq', 2), ('evictedTotal', 0), ('gapCounter', 0),
        ('seqReservedTo', 0), ('cleanShutdown', 1);
      INSERT INTO readings VALUES (1, 'fridge-2', 'fridge-2-top', ${T0}, 4.5, 'ok');`);
    old.close();
    const box = open();
    expect(box.pendingReadings(0, 10)).toEqual([
      {
        seq: 1,
        unitId: "fridge-2",
        probeId: "fridge-2-top",
        observedAt: T0,
        tempC: 4.5,
        quality: "ok",
        timeQuality: null,
      },
    ]);
    expect(box.append([reading(1)]).readings[0]?.seq).toBe(2);
    box.close();
  });

  it("re-anchors this boot's untrusted readings from their monotonic time, and only those", () => {
    const openOn = (bootId: string) =>
      Outbox.open({ path, agentId: "pi-1", maxReadings: 1000, bootId, now: () => T0 });
    const stale = T0 - 2 * 86_400_000;
    const a = openOn("boot-1");
    a.append([
      { ...reading(0), observedAt: stale, monoMs: 1000, timeQuality: "unsynchronised" },
      { ...reading(1), observedAt: stale + 10_000, monoMs: 11_000, timeQuality: "unsynchronised" },
    ]);
    a.close();
    // Rebooted, still unsynchronised: the earlier boot's readings cannot be re-anchored.
    const b = openOn("boot-2");
    b.append([
      { ...reading(2), observedAt: stale + 5000, monoMs: 2000, timeQuality: "stepped" },
      { ...reading(3), observedAt: T0, monoMs: 3000 },
    ]);
    expect(b.untrustedPending()).toBe(3);
    // Synchronised: wall = monotonic + (T0 + 60 s − 3000 …), i.e. offset T0 + 57 000.
    expect(b.reanchor({ offsetMs: T0 + 57_000, qualities: ["unsynchronised", "stepped"] })).toBe(1);
    const rows = b.pendingReadings(0, 10).map((r) => [r.seq, r.observedAt, r.timeQuality]);
    expect(rows).toEqual([
      [1, stale, "unsynchronised"],
      [2, stale + 10_000, "unsynchronised"],
      [3, T0 + 59_000, "reanchored"],
      [4, T0, null],
    ]);
    expect(b.untrustedPending()).toBe(2);
    b.close();
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
