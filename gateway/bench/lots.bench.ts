/**
 * bench:lots — the lots service at scale: 100,000 lots and 1,000,000 movements on a SQLite
 * record database (file, WAL), then
 *   - correlation: which lots (and their own intervals) overlap an excursion window in a busy
 *     unit (target p99 ≤ 20 ms), and the whole onExcursion (exposure from readings, policy,
 *     holds, lot events and eligibility through the outbox);
 *   - eligibility: one lot's eligibility state (target p99 ≤ 5 ms).
 * Writes the figures into docs/benchmarks.md under "## Lots (bench:lots)" (only that section).
 *
 *   node bench/lots.bench.ts [--lots 100000] [--no-write]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { ExcursionEvent, Movement } from "@coldtrace/protocol";
import pino from "pino";
import { createLotService } from "../src/lots/index.ts";
import { createSqliteReadingStore, openSqlite } from "../src/storage/sqlite.ts";

const args = process.argv.slice(2);
const lotsArg = args.indexOf("--lots");
const LOTS = lotsArg >= 0 ? Number(args[lotsArg + 1]) : 100_000;
const WRITE = !args.includes("--no-write");
const SITES = 100;
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const BASE = Date.UTC(2026, 0, 1);
const BUSY = "busy-fridge";

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? 0;
}
const ms = (v: number) => `${v.toFixed(2)} ms`;

/** Ten movements per lot: receive, moves, a transfer through a box to another site, dispenses. */
function lotMovements(i: number): Movement[] {
  const site = `s${i % SITES}`;
  const dest = `s${(i + 1) % SITES}`;
  const busy = i % 100 === 0;
  // Busy-unit lots arrive spread over 90 days, others over 30.
  const t0 = BASE + (busy ? ((i / 100) * 131 * MIN) % (90 * DAY) : (i * 37 * MIN) % (30 * DAY));
  const f1 = busy ? BUSY : `${site}-f${i % 10}`;
  const f2 = `${site}-f${(i + 3) % 10}`;
  const box = `${site}-box${i % 5}`;
  const fd = `${dest}-f${i % 10}`;
  const lotId = `L${String(i).padStart(6, "0")}/${i % 7}`;
  const base = { v: 1 as const, sku: `SKU-${i % 50}`, lotId };
  const m = (
    n: number,
    p: Partial<Movement> & Pick<Movement, "kind" | "quantity" | "occurredAt">,
  ): Movement => ({ ...base, siteId: site, movementId: `m-${i}-${n}`, ...p }) as Movement;
  return [
    m(1, { kind: "receive", quantity: 20, occurredAt: t0, toUnitId: f1 }),
    m(2, { kind: "move", quantity: 5, occurredAt: t0 + HOUR, fromUnitId: f1, toUnitId: f2 }),
    m(3, { kind: "load", quantity: 5, occurredAt: t0 + 2 * HOUR, fromUnitId: f1, toUnitId: box }),
    m(4, {
      kind: "unload",
      siteId: dest,
      quantity: 5,
      occurredAt: t0 + 6 * HOUR,
      fromUnitId: box,
      toUnitId: fd,
    }),
    m(5, { kind: "dispense", quantity: 2, occurredAt: t0 + DAY, fromUnitId: f1 }),
    m(6, { kind: "dispense", quantity: 3, occurredAt: t0 + 2 * DAY, fromUnitId: f2 }),
    m(7, { kind: "move", quantity: 3, occurredAt: t0 + 3 * DAY, fromUnitId: f1, toUnitId: f2 }),
    m(8, { kind: "dispense", siteId: dest, quantity: 2, occurredAt: t0 + 3 * DAY, fromUnitId: fd }),
    m(9, { kind: "return", quantity: 1, occurredAt: t0 + 4 * DAY, toUnitId: f1 }),
    // The last dispense empties the first fridge: a lot stays there about five days.
    m(10, { kind: "dispense", quantity: 6, occurredAt: t0 + 5 * DAY, fromUnitId: f1 }),
  ];
}

const dir = mkdtempSync(path.join(os.tmpdir(), "ct-bench-lots-"));
const log = pino({ level: "silent" });
try {
  const db = openSqlite(path.join(dir, "records.db"));
  // A gateway with a million movements gives SQLite a page cache to match (default is 2 MB).
  db.exec("PRAGMA cache_size = -1048576");
  const readingsDb = openSqlite(":memory:");
  const readings = await createSqliteReadingStore(readingsDb);
  const clock = { now: () => BASE + 120 * DAY };
  const service = await createLotService({
    db: { kind: "sqlite", db },
    readings,
    clock,
    log,
    unitLimits: () => ({ high: 8, low: 2 }),
  });
  for (let s = 0; s < 50; s++) {
    await service.upsertProduct({
      sku: `SKU-${s}`,
      name: `Product ${s}`,
      storageClass: "2-8C",
      budgetMinutes: { high: 600, low: 120 },
    });
  }

  // 1) Load: all movements in one transaction with prepared statements, in chunks of lots.
  const total = LOTS * 10;
  console.log(`generating ${LOTS.toLocaleString()} lots / ${total.toLocaleString()} movements …`);
  const tLoad = performance.now();
  const CHUNK = 10_000;
  for (let from = 0; from < LOTS; from += CHUNK) {
    const batch: Movement[] = [];
    for (let i = from; i < Math.min(LOTS, from + CHUNK); i++) batch.push(...lotMovements(i));
    await service.recordMovements(batch);
    const done = Math.min(LOTS, from + CHUNK) * 10;
    console.log(
      `  ${done.toLocaleString()} movements (${((performance.now() - tLoad) / 1000).toFixed(1)} s)`,
    );
  }
  const loadS = (performance.now() - tLoad) / 1000;
  console.log(`loaded in ${loadS.toFixed(1)} s (${Math.round(total / loadS).toLocaleString()} movements/s)`);

  // 2) Correlation in the busy unit: windows of 60 min over its 90 days.
  const windows: Array<{ from: number; to: number }> = [];
  for (let k = 0; k < 300; k++) {
    const from = BASE + 2 * DAY + ((k * 7919 * MIN) % (85 * DAY));
    windows.push({ from, to: from + HOUR });
  }
  const corr: number[] = [];
  let inside = 0;
  for (const w of windows) {
    const t = performance.now();
    const rows = await service.lotsInWindow(BUSY, w.from, w.to);
    corr.push(performance.now() - t);
    inside += rows.length;
  }
  console.log(
    `correlation (occupancy overlap): p50 ${ms(pct(corr, 50))} p99 ${ms(pct(corr, 99))}, ${(inside / windows.length).toFixed(1)} lot intervals per window`,
  );

  // 3) Whole onExcursion (readings → exposure → policy → holds → outbox) on 40 windows.
  const full: number[] = [];
  let seq = 1;
  for (const [k, w] of windows.slice(0, 40).entries()) {
    const rows = [];
    for (let t = w.from - 30 * MIN; t < w.to + 10 * MIN; t += MIN) {
      rows.push({
        agentId: "bench",
        seq: seq++,
        siteId: "s0",
        unitId: BUSY,
        probeId: "busy-p1",
        observedAt: t,
        receivedAt: t,
        tempC: t >= w.from && t < w.to ? 9.5 : 5,
        quality: "ok" as const,
        backfill: false,
      });
    }
    await readings.append(rows);
    const e: ExcursionEvent = {
      v: 1,
      eventId: `bench-exc-${k}-closed`,
      siteId: "s0",
      at: w.to,
      type: "excursion.closed",
      excursionId: `bench-exc-${k}`,
      unitId: BUSY,
      unitKind: "fridge",
      side: "high",
      tier: "alert",
      startedAt: w.from,
      endedAt: w.to,
      durationMs: HOUR,
      peakC: 9.5,
      troughC: 8.1,
      degreeMinutes: 90,
      minutesBeyond: { alert: 60, action: 0 },
      mktC: 9.5,
    };
    const t = performance.now();
    await service.onExcursion(e);
    full.push(performance.now() - t);
  }
  console.log(`onExcursion (exposure + policy + outbox): p50 ${ms(pct(full, 50))} p99 ${ms(pct(full, 99))}`);

  // 4) Eligibility of one lot.
  const elig: number[] = [];
  for (let k = 0; k < 2000; k++) {
    const i = (k * 48_271) % LOTS;
    const t = performance.now();
    const r = await service.eligibility({ lotId: `L${String(i).padStart(6, "0")}/${i % 7}` });
    elig.push(performance.now() - t);
    if (r.length === 0) throw new Error(`no eligibility for lot ${i}`);
  }
  console.log(`eligibility (one lot, all sites): p50 ${ms(pct(elig, 50))} p99 ${ms(pct(elig, 99))}`);
  // 5) Eligibility of a whole site (the planner's bulk pull).
  const bySite: number[] = [];
  let siteLots = 0;
  for (let k = 0; k < 50; k++) {
    const t = performance.now();
    const r = await service.eligibility({ siteId: `s${(k * 37) % SITES}` });
    bySite.push(performance.now() - t);
    siteLots += r.length;
  }
  console.log(
    `eligibility (whole site, ${(siteLots / 50).toFixed(0)} lots): p50 ${ms(pct(bySite, 50))} p99 ${ms(pct(bySite, 99))}`,
  );
  const pending = await service.outbox.pending();
  db.close();
  readingsDb.close();

  if (WRITE) {
    let commit = "unknown";
    try {
      commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    } catch {}
    const cpu = os.cpus()[0]?.model ?? "unknown CPU";
    const section = `## Lots (bench:lots)

\`npm run bench:lots\` — ${new Date().toISOString().slice(0, 10)}, commit ${commit}, ${cpu} (${os.cpus().length} cores, shared),
${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, SQLite record database (file, WAL, 1 GiB page cache).

| Measure | Result | Target |
|---|---|---|
| Load ${LOTS.toLocaleString()} lots / ${total.toLocaleString()} movements (one transaction per 10k lots, prepared statements, ledger + eligibility rows + outbox) | ${loadS.toFixed(1)} s (${Math.round(total / loadS).toLocaleString()} movements/s) | fast |
| Correlate an excursion in a busy unit (${(inside / windows.length).toFixed(1)} lot intervals per 60-min window; occupancy overlap query) | p50 ${ms(pct(corr, 50))}, p99 ${ms(pct(corr, 99))} | p99 ≤ 20 ms |
| Whole \`onExcursion\` in that unit (readings, exposure per lot, policy, holds, events via the outbox) | p50 ${ms(pct(full, 50))}, p99 ${ms(pct(full, 99))} | — |
| Eligibility of one lot (all its sites) | p50 ${ms(pct(elig, 50))}, p99 ${ms(pct(elig, 99))} | p99 ≤ 5 ms |
| Eligibility of a whole site (${(siteLots / 50).toFixed(0)} lots, set queries) | p50 ${ms(pct(bySite, 50))}, p99 ${ms(pct(bySite, 99))} | — |

Outbox rows left unsent (no dispatcher in the bench): ${pending.toLocaleString()}.
`;
    const file = new URL("../../docs/benchmarks.md", import.meta.url);
    const doc = readFileSync(file, "utf8");
    const start = doc.indexOf("## Lots (bench:lots)");
    let next: string;
    if (start >= 0) {
      const after = doc.indexOf("\n## ", start + 5);
      next = doc.slice(0, start) + section + (after >= 0 ? `\n${doc.slice(after + 1)}` : "");
    } else {
      next = `${doc.trimEnd()}\n\n${section}`;
    }
    writeFileSync(file, next);
    console.log("docs/benchmarks.md updated");
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
