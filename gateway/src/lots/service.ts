/**
 * The lots service: the facade the module, the REST routes, the CSV import and the QA module
 * call. It validates input, opens the transaction (or joins the caller's), and hands the work
 * to the use cases; every SQL statement is in the LotStore, every rule in a pure file.
 *
 *   movements.ts    movements checked, ledger rebuilt, causes in force applied at once
 *   correlation.ts  engine outputs → causes → exposures, reconciled per lot per batch
 *   quarantine.ts   holds where the stock is now, lifts, QA decisions (release / reject)
 *   transfer.ts     the planner's transfer check         events.ts  lot events, retained states
 *   store.ts        every SQL statement                  eligibility.ts, budget.ts, exposure.ts,
 *                                                        reconcile.ts, ledger.ts, policy.ts: rules
 *
 * Transactions: a method given an executor `tx` (the records transaction of an ingest batch,
 * or the QA module's) writes through it inside a SAVEPOINT, so a lots failure rolls back only
 * the lots part, and the caller notifies the outbox after its commit. Without one, the method
 * runs its own transaction and notifies the outbox itself. Either way the module's writers are
 * serialised by the SQL seam (`lockModule`: SQLite's one lock, PostgreSQL's advisory lock), so
 * lotSeq numbers the events of one lot and site 1, 2, 3 … without gaps.
 */
import {
  type Eligibility,
  type ExcursionEvent,
  formatTopic,
  type Movement,
  parseOr,
  validatePayload,
} from "@coldtrace/protocol";
import type pino from "pino";
import type { z } from "zod";
import { summarizeExposure } from "../excursions/metrics.ts";
import type { Clock } from "../kernel/clock.ts";
import type { DomainEvent } from "../kernel/events.ts";
import type { UnitEntry } from "../kernel/units.ts";
import { createEventOutbox, type Outbox } from "../outbox/index.ts";
import {
  isDatabase,
  lockModule,
  type RecordDb,
  type SqlDatabase,
  type SqlExecutor,
  sqlDatabase,
  withSavepoint,
} from "../storage/sql/database.ts";
import type { ReadingStore } from "../storage/types.ts";
import type { LotsContext } from "./context.ts";
import { causeOfExcursion, causeOfGap, causesOf, reconcileOutputs } from "./correlation.ts";
import {
  type CsvImportReport,
  type CsvRowError,
  type ImportOptions,
  type ParsedMovements,
  readMovementsCsv,
} from "./csv.ts";
import { LotEvents } from "./events.ts";
import type { Limits, SummarizeExposure } from "./exposure.ts";
import {
  type DecisionInput,
  decision as decisionSchema,
  type EligibilityQuery,
  eligibilityQuery,
  type Lot,
  type LotInput,
  lot as lotSchema,
  normalizeProduct,
  type Product,
  type ProductInput,
  product as productSchema,
  type RecordingGapInput,
  type RejectInput,
  rejectDecision,
  type TransferCheckInput,
  transferCheck,
} from "./model.ts";
import { applyMovements, checkMovements, movementError } from "./movements.ts";
import { defaultPolicy, type QuarantinePolicy } from "./policy.ts";
import { type Disposition, decideLot } from "./quarantine.ts";
import { lotsMigrations } from "./schema.ts";
import { type LotExposure, type LotHold, LotStore, type OccupancyRow, type SiteLot } from "./store.ts";
import { type TransferVerdict, transferVerdict } from "./transfer.ts";

export type { ExposureSummary, SummarizeExposure } from "./exposure.ts";
export type { LotExposure, LotHold, OccupancyRow } from "./store.ts";
export type { TransferVerdict } from "./transfer.ts";

export interface LotServiceDeps {
  /** The records database (through the SQL seam, or as storage opened it). */
  db: RecordDb | SqlDatabase;
  /**
   * The gateway's outbox (its table already created). Default: the service opens one on `db`;
   * whoever runs it then starts a dispatcher on it.
   */
  outbox?: Outbox;
  readings: Pick<ReadingStore, "range">;
  policy?: QuarantinePolicy;
  clock?: Clock;
  log: pino.Logger;
  /** The unit's own range, used when a product has no labelled range on a side. */
  unitLimits(unitId: string): Limits | undefined;
  /**
   * Which units exist (the gateway's unit directory): a movement naming another unit is refused.
   * Default: every unit exists (a service run without a gateway, e.g. a bulk load).
   */
  units?: { get(unitId: string): UnitEntry | undefined };
  /** Override the exposure summary (defaults to the excursion engine's summarizeExposure). */
  summarizeExposure?: SummarizeExposure;
}

/** One page of a list. */
export interface Page {
  after?: string;
  limit?: number;
}

export interface LotService {
  readonly outbox: Outbox;
  readonly policy: QuarantinePolicy;
  upsertProduct(p: ProductInput): Promise<Product>;
  getProduct(sku: string): Promise<Product | undefined>;
  listProducts(q?: Page): Promise<Product[]>;
  upsertLot(l: LotInput): Promise<Lot>;
  getLot(lotId: string): Promise<Lot | undefined>;
  listLots(q?: Page & { sku?: string }): Promise<Lot[]>;
  /**
   * Idempotent by movementId (the same content again is a duplicate; other content is
   * CT_LOT_CONFLICT); placed by occurredAt whatever the arrival order; CT_LOT_INVALID naming the
   * field for an unknown unit or SKU, or a take-out the ledger does not hold.
   */
  recordMovement(m: Movement, tx?: SqlExecutor): Promise<{ duplicate: boolean }>;
  /** Many movements in ONE transaction (all or nothing); used by CSV import and bulk loads. */
  recordMovements(
    ms: readonly Movement[],
    onProgress?: (done: number) => void,
    tx?: SqlExecutor,
  ): Promise<{ inserted: number; duplicates: number }>;
  importCsv(text: string, opts?: ImportOptions): Promise<CsvImportReport>;
  /** Import rows already read from a file (CSV or .xlsx, see import-file.ts): all or nothing. */
  importMovements(parsed: ParsedMovements): Promise<CsvImportReport>;
  /** One batch of engine outputs (excursions, recording gaps), reconciled per lot. */
  onEngineOutputs(outputs: readonly DomainEvent[], tx?: SqlExecutor): Promise<void>;
  onExcursion(e: ExcursionEvent, tx?: SqlExecutor): Promise<void>;
  onRecordingGap(g: RecordingGapInput, tx?: SqlExecutor): Promise<void>;
  release(d: DecisionInput, tx?: SqlExecutor): Promise<Eligibility>;
  reject(d: RejectInput, tx?: SqlExecutor): Promise<Eligibility>;
  eligibility(q: EligibilityQuery): Promise<Eligibility[]>;
  checkTransfer(q: TransferCheckInput): Promise<TransferVerdict>;
  occupancy(unitId: string, at: number): Promise<Array<{ lotId: string; siteId: string; quantity: number }>>;
  occupancyIntervals(unitId: string, from: number, to: number): Promise<OccupancyRow[]>;
  exposures(lotId: string): Promise<LotExposure[]>;
  holds(q: { lotId?: string; siteId?: string }): Promise<LotHold[]>;
  /**
   * Publish the eligibility of lots (with stock) that expired since the last sweep, so retained
   * states flip to ineligible without waiting for another change. Call periodically (e.g. each
   * minute); the first call after start covers every expired lot. Returns the states published.
   */
  sweepExpired(): Promise<number>;
  /** Lots (with stock) whose budget or hold would be affected by an excursion/gap in this window. */
  lotsInWindow(unitId: string, from: number, to: number): Promise<OccupancyRow[]>;
  /**
   * Enqueue the current retained eligibility of every lot and site again (the database is the
   * truth; a broker that lost retained messages gets them back). Returns the states enqueued.
   */
  resyncRetained(): Promise<number>;
  /**
   * A retained eligibility the broker holds for `topic`: cleared (through the outbox) when this
   * database has no state for that lot and site. Returns true when a clear was enqueued.
   */
  clearIfStale(siteId: string, lotId: string): Promise<boolean>;
}

const parse = <S extends z.ZodType>(schema: S, where: string, input: unknown): z.output<S> =>
  parseOr("CT_LOT_INVALID", schema, where, input);

/** Movements per resync transaction. */
const RESYNC_PAGE = 500;

export async function createLotService(deps: LotServiceDeps): Promise<LotService> {
  const log = deps.log.child({ component: "lots" });
  const clock = deps.clock ?? Date;
  const policy = deps.policy ?? defaultPolicy;
  const sql: SqlDatabase = "transaction" in deps.db ? deps.db : sqlDatabase(deps.db);
  let outbox: Outbox;
  if (deps.outbox) {
    outbox = deps.outbox;
  } else {
    const own = createEventOutbox(sql, clock);
    await own.init();
    outbox = own;
  }
  await sql.migrate("lots", lotsMigrations);
  const ctx: LotsContext = {
    clock,
    log,
    policy,
    events: new LotEvents({ outbox, clock, log }),
    readings: deps.readings,
    summarize: deps.summarizeExposure ?? summarizeExposure,
    unitLimits: deps.unitLimits,
    unit: (unitId) =>
      deps.units ? deps.units.get(unitId) : { unitId, siteId: "", kind: "fridge", probeIds: [] },
  };
  const reader = new LotStore(sql);
  let lastSweep = 0;

  /**
   * Run `fn` on a store inside a transaction: the caller's (`tx`, in a savepoint; the caller
   * commits and notifies the outbox), or our own (then we notify).
   */
  const write = async <T>(tx: SqlExecutor | undefined, fn: (store: LotStore) => Promise<T>): Promise<T> => {
    const target = tx ?? sql;
    if (isDatabase(target)) {
      const out = await target.transaction(async (own) => {
        await lockModule(own, "lots");
        return fn(new LotStore(own));
      });
      outbox.notify();
      return out;
    }
    return withSavepoint(target, "lots", async () => {
      await lockModule(target, "lots");
      return fn(new LotStore(target));
    });
  };

  const record = async (
    ms: readonly Movement[],
    single: boolean,
    tx?: SqlExecutor,
    onProgress?: (n: number) => void,
  ) =>
    write(tx, async (store) => {
      const checked = await checkMovements(ctx, store, ms);
      if (checked.issues.length > 0)
        throw movementError(single ? "movement" : "movements", checked.issues, single);
      const inserted = await applyMovements(ctx, store, checked, onProgress);
      return { inserted, duplicates: ms.length - inserted };
    });

  const decide = (
    d: { siteId: string; lotId: string; by: string; reason: string },
    to: Disposition,
    tx?: SqlExecutor,
  ) =>
    write(tx, async (store) => {
      await decideLot(ctx, store, d, to);
      return ctx.events.publishEligibility(store, d.siteId, d.lotId);
    });

  const service: LotService = {
    outbox,
    policy,

    async upsertProduct(input) {
      const p = normalizeProduct(parse(productSchema, "product", input));
      await write(undefined, (store) => store.upsertProduct(p, clock.now()));
      return p;
    },
    getProduct: (sku) => reader.product(sku),
    listProducts: (q = {}) => reader.products(q),

    async upsertLot(input) {
      const l = parse(lotSchema, "lot", input);
      await write(undefined, async (store) => {
        await store.upsertLot(l, clock.now());
        // Expiry changes eligibility at every site holding the lot.
        for (const siteId of await store.openSites(l.lotId))
          await ctx.events.publishEligibility(store, siteId, l.lotId);
      });
      return l;
    },
    getLot: (lotId) => reader.lot(lotId),
    listLots: (q = {}) => reader.lots(q),

    async recordMovement(input, tx) {
      const m = validatePayload("movement", input, "movement");
      const r = await record([m], true, tx);
      if (r.inserted === 0) log.debug({ movementId: m.movementId }, "duplicate movement ignored");
      return { duplicate: r.inserted === 0 };
    },

    async recordMovements(input, onProgress, tx) {
      const ms = input.map((m, i) => validatePayload("movement", m, `movements[${i}]`));
      return record(ms, false, tx, onProgress);
    },

    async importCsv(text, opts) {
      return service.importMovements(readMovementsCsv(text, opts));
    },

    async importMovements(parsed) {
      const errors: CsvRowError[] = [...parsed.errors];
      let report: { inserted: number } | undefined;
      if (errors.length === 0) {
        const ms = parsed.movements.map((x) => x.m);
        report = await write(undefined, async (store) => {
          const checked = await checkMovements(ctx, store, ms);
          for (const i of checked.issues) {
            const row = parsed.movements[i.index];
            errors.push({
              row: row?.row ?? 0,
              column: i.field,
              message: i.conflict ? "was already imported with different content" : i.message,
              value: String(row?.m[i.field as keyof Movement] ?? ""),
            });
          }
          if (errors.length > 0) return undefined;
          return { inserted: await applyMovements(ctx, store, checked) };
        });
      }
      if (!report) {
        log.warn({ rows: parsed.rows, errors: errors.length }, "movements import rejected");
        return { ok: false, rows: parsed.rows, imported: 0, duplicates: 0, errors };
      }
      log.info({ rows: parsed.rows, imported: report.inserted }, "movements imported");
      return {
        ok: true,
        rows: parsed.rows,
        imported: report.inserted,
        duplicates: parsed.rows - report.inserted,
        errors: [],
      };
    },

    async onEngineOutputs(outputs, tx) {
      const causes = causesOf(outputs);
      if (causes.length === 0) return;
      await write(tx, (store) => reconcileOutputs(ctx, store, causes));
    },
    async onExcursion(e, tx) {
      await write(tx, (store) => reconcileOutputs(ctx, store, [causeOfExcursion(e)]));
    },
    async onRecordingGap(g, tx) {
      await write(tx, (store) => reconcileOutputs(ctx, store, [causeOfGap(g)]));
    },

    async release(d, tx) {
      return decide(parse(decisionSchema, "release", d), "released", tx);
    },
    async reject(input, tx) {
      const d = parse(rejectDecision, "reject", input);
      return decide(d, d.returnToSupplier ? "returned_to_supplier" : "rejected", tx);
    },

    async eligibility(input) {
      const q = parse(eligibilityQuery, "eligibility", input);
      if (q.lotId === undefined) return ctx.events.eligibilityAtSite(reader, q.siteId ?? "");
      const sites = q.siteId !== undefined ? [q.siteId] : await reader.sitesOf(q.lotId);
      const out: Eligibility[] = [];
      for (const siteId of sites) out.push(await ctx.events.eligibilityOf(reader, siteId, q.lotId));
      return out;
    },

    async checkTransfer(input) {
      const q = parse(transferCheck, "transfer", input);
      const holding = await reader.holdingIn(q.lotId, q.fromUnitId);
      const e = holding ? await ctx.events.eligibilityOf(reader, holding.siteId, q.lotId) : undefined;
      return transferVerdict(q, holding, e, clock.now());
    },

    occupancy: (unitId, at) => reader.occupantsAt(unitId, at),

    async sweepExpired() {
      const now = clock.now();
      const pairs = await reader.expiredWithStock(lastSweep, now);
      if (pairs.length > 0) {
        await write(undefined, async (store) => {
          for (const p of pairs) await ctx.events.publishEligibility(store, p.siteId, p.lotId);
        });
        log.info({ count: pairs.length }, "expired lots published as ineligible");
      }
      lastSweep = now;
      return pairs.length;
    },

    occupancyIntervals: (unitId, from, to) => reader.intervalsIn(unitId, from, to),
    lotsInWindow: (unitId, from, to) => reader.intervalsIn(unitId, from, to),
    exposures: (lotId) => reader.exposuresOf(lotId),
    holds: (q) => reader.holds(q),

    async resyncRetained() {
      const startedAt = clock.now();
      let after: SiteLot | undefined;
      let total = 0;
      for (;;) {
        const page = await write(undefined, (store) =>
          ctx.events.resyncPage(store, startedAt, after, RESYNC_PAGE),
        );
        total += page.count;
        after = page.last;
        if (page.count < RESYNC_PAGE) break;
      }
      if (total > 0)
        log.info({ states: total }, "retained eligibility enqueued again (resync with the database)");
      return total;
    },

    async clearIfStale(siteId, lotId) {
      // Most retained states seen are this gateway's own: a read settles them, no transaction.
      if ((await reader.siteState(siteId, lotId))?.published) return false;
      const cleared = await write(undefined, async (store) => {
        if ((await store.siteState(siteId, lotId))?.published) return false;
        await outbox.enqueueClear(
          store.executor,
          "eligibility",
          formatTopic({ kind: "eligibility", siteId, lotId }),
          `elig-clear-${siteId}-${lotId.length}-${clock.now()}-${Math.random().toString(36).slice(2, 8)}`,
        );
        return true;
      });
      if (cleared)
        log.info(
          { siteId, lotId },
          "stale retained eligibility cleared: no state for this lot in the database",
        );
      return cleared;
    },
  };
  return service;
}
