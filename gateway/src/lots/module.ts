/**
 * The lots module inside the running gateway: an extension that opens the LotService on the
 * records database and connects it to ingest, the outbox, the broker and the REST API.
 *
 *   ERP ─ ct/v1/{site}/movements ─▶ ingest ─ onMovement(m, tx) ─────▶ recordMovement
 *   engine outputs (one batch) ─────────── onEngineOutputs(o, tx) ──▶ reconciled per lot
 *   lot events, retained eligibility ─▶ the gateway's outbox (ctx.outbox) ─▶ its dispatcher
 *   start ─▶ every retained eligibility enqueued again (the database is the truth)
 *   ct/v1/{sites}/eligibility/+ (retained, on the gateway's session) ─▶ stale ones cleared
 *   timer (lots.expirySweepMs, unref'd) ─▶ sweepExpired
 *   REST /api/v1/lots/… ─▶ lotsPlugin
 *
 * Both hooks write through the `tx` they are given (ingest's batch transaction, or the
 * database itself until ingest has one), in a savepoint: a lots failure is logged and counted,
 * never thrown into ingest, and rolls back only the lots part — the alarm and excursion records
 * of the same batch stand (docs/qa/quarantine.md: QA reviews the logged cause). A movement the
 * service refuses (CT_LOT_INVALID, CT_LOT_CONFLICT) is logged with its topic and counted.
 *
 * The range limits used for a lot's exposure (when its product has no labelled range on a
 * side) are the range of the unit's resolved profile (`ctx.units.profile`).
 */
import { formatTopic, isColdtraceError, parseTopic } from "@coldtrace/protocol";
import type { Logger } from "pino";
import type { Extension, ExtensionFactory, Subscription } from "../extension/extension.ts";
import { lotsPlugin } from "./plugin.ts";
import type { QuarantinePolicy } from "./policy.ts";
import { createLotService, type LotService } from "./service.ts";

export interface LotsExtensionOptions {
  /** Overrides config.lots.policy. */
  policy?: QuarantinePolicy;
}

/** The lots extension; `service` exists once it has started. */
export interface LotsExtension extends Extension {
  readonly service: LotService | undefined;
}

export function lotsExtension(options: LotsExtensionOptions = {}): ExtensionFactory {
  return (ctx): LotsExtension => {
    const log: Logger = ctx.log.child({ component: "lots-runtime" });
    const cfg = ctx.config.lots;
    let service: LotService | undefined;
    let timer: NodeJS.Timeout | undefined;
    let sweeping: Promise<void> = Promise.resolve();
    const rejected = { invalid: 0, conflict: 0, failed: 0 };
    let batchesFailed = 0;

    const unitLimits = (unitId: string) => {
      try {
        const range = ctx.units.profile(unitId)?.range;
        if (!range) return undefined;
        return {
          ...(range.high === undefined ? {} : { high: range.high }),
          ...(range.low === undefined ? {} : { low: range.low }),
        };
      } catch (err) {
        // The engine refused the same profile when the unit registered; it logged that.
        log.warn({ err, unitId }, "unit profile invalid; product range only");
        return undefined;
      }
    };

    const sweep = (lots: LotService) => {
      sweeping = (async () => {
        try {
          await lots.sweepExpired();
        } catch (err) {
          log.error({ err }, "lots expiry sweep failed");
        }
      })();
    };

    // Retained eligibility the broker holds for the sites this gateway serves: a state for a lot
    // the database has none for is stale (a restored or replaced database) and is cleared.
    const subscriptions: Subscription[] = ctx.config.broker.subscribeSites.map((site) => ({
      filter: `ct/v1/${site}/eligibility/+`,
      async onMessage(topic, payload) {
        if (!service || payload.length === 0) return;
        const t = parseTopic(topic);
        if (t.kind !== "eligibility") return;
        await service.clearIfStale(t.siteId, t.lotId);
      },
    }));

    return {
      name: "lots",
      get service() {
        return service;
      },
      subscriptions,
      async start() {
        const lots = await createLotService({
          db: ctx.sql,
          outbox: ctx.outbox,
          readings: ctx.readings,
          policy: options.policy ?? cfg.policy,
          clock: ctx.clock,
          log: ctx.log,
          unitLimits,
          units: ctx.units,
        });
        service = lots;
        // Before the broker and the dispatcher start: these rows go out behind what is unsent.
        await lots.resyncRetained();
        sweep(lots);
        timer = setInterval(() => sweep(lots), cfg.expirySweepMs);
        timer.unref();
        log.info({ backend: ctx.sql.kind, policy: lots.policy }, "lots module started");
      },
      async onMovement(m, tx) {
        if (!service) return;
        try {
          const r = await service.recordMovement(m, tx);
          log.debug({ movementId: m.movementId, duplicate: r.duplicate }, "movement recorded");
        } catch (err) {
          const topic = formatTopic({ kind: "movement", siteId: m.siteId });
          const where = { err, topic, movementId: m.movementId, siteId: m.siteId };
          if (isColdtraceError(err, "CT_LOT_CONFLICT")) rejected.conflict++;
          else if (isColdtraceError(err, "CT_LOT_INVALID") || isColdtraceError(err, "CT_WIRE_INVALID"))
            rejected.invalid++;
          else {
            rejected.failed++;
            log.error(where, "movement not recorded");
            return;
          }
          log.warn(where, "movement rejected");
        }
      },
      async onEngineOutputs(outputs, tx) {
        if (!service) return;
        try {
          await service.onEngineOutputs(outputs, tx);
        } catch (err) {
          batchesFailed++;
          log.error({ err, outputs: outputs.length }, "engine outputs not correlated with lots");
        }
      },
      metrics: () => ({
        counters: {
          'coldtrace_lots_movements_rejected_total{reason="invalid"}': rejected.invalid,
          'coldtrace_lots_movements_rejected_total{reason="conflict"}': rejected.conflict,
          'coldtrace_lots_movements_rejected_total{reason="failed"}': rejected.failed,
          coldtrace_lots_correlation_failures_total: batchesFailed,
        },
      }),
      routes: async (app, opts) => {
        if (service) await lotsPlugin(service)(app, opts);
      },
      async stop() {
        clearInterval(timer);
        await sweeping;
      },
    };
  };
}
