/**
 * The lots module inside the running gateway: an extension that opens the LotService on the
 * records database and connects it to ingest, the outbox and the REST API.
 *
 *   ERP ─ ct/v1/{site}/movements ─▶ ingest ─ onMovement ─────────▶ recordMovement
 *   engine ─ excursion outputs ──────────── onEngineOutputs ──────▶ onExcursion
 *   engine ─ gap outputs, reason recording_gap (engine state) ────▶ onRecordingGap (per unit)
 *   lot events, retained eligibility ─▶ the gateway's outbox (ctx.outbox) ─▶ its dispatcher
 *   timer (lots.expirySweepMs, unref'd) ─▶ sweepExpired, prune sent outbox rows
 *   REST /api/v1/lots/… ─▶ lotsPlugin
 *
 * The range limits used for a lot's exposure (when its product has no labelled range on a
 * side) are the range of the unit's resolved profile (`ctx.units.profile`, resolved by the
 * excursions module: kind defaults ← profiles.byKind ← profiles.byUnit).
 *
 * A lots failure is logged, never thrown into ingest: the alarm and excursion events of the
 * same batch must still be published (docs/qa/quarantine.md: QA reviews the logged cause).
 * The service still runs its own transactions; taking part in ingest's batch transaction
 * (the `tx` of the hooks) comes with the lots split (#10 phase B, #14).
 */
import type { Logger } from "pino";
import type { Extension, ExtensionFactory } from "../extension/extension.ts";
import type { DomainEvent } from "../kernel/events.ts";
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

/** Recording gaps among engine outputs, one per unit (the engine's gap state `recording_gap`). */
function recordingGaps(outputs: readonly DomainEvent[]) {
  const out: { siteId: string; unitId: string; from: number; to: number; gapId: string }[] = [];
  for (const o of outputs) {
    if (o.type !== "gap" || o.gap.reason !== "recording_gap") continue;
    for (const unitId of o.gap.unitIds) {
      out.push({
        siteId: o.gap.siteId,
        unitId,
        from: o.gap.fromObservedAt,
        to: o.gap.toObservedAt,
        gapId: o.gap.gapId,
      });
    }
  }
  return out;
}

export function lotsExtension(options: LotsExtensionOptions = {}): ExtensionFactory {
  return (ctx): LotsExtension => {
    const log: Logger = ctx.log.child({ component: "lots-runtime" });
    const cfg = ctx.config.lots;
    let service: LotService | undefined;
    let timer: NodeJS.Timeout | undefined;
    let sweeping: Promise<void> = Promise.resolve();

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
          const pruned = await lots.outbox.prune(ctx.clock.now() - cfg.outboxRetentionMs);
          if (pruned > 0) log.debug({ pruned }, "sent outbox rows pruned");
        } catch (err) {
          log.error({ err }, "lots expiry sweep failed");
        }
      })();
    };

    return {
      name: "lots",
      get service() {
        return service;
      },
      async start() {
        const lots = await createLotService({
          db: ctx.sql,
          outbox: ctx.outbox,
          readings: ctx.readings,
          policy: options.policy ?? cfg.policy,
          clock: ctx.clock,
          log: ctx.log,
          unitLimits,
        });
        service = lots;
        sweep(lots);
        timer = setInterval(() => sweep(lots), cfg.expirySweepMs);
        timer.unref();
        log.info({ backend: ctx.sql.kind, policy: lots.policy }, "lots module started");
      },
      async onMovement(m) {
        if (!service) return;
        try {
          const r = await service.recordMovement(m);
          log.debug({ movementId: m.movementId, duplicate: r.duplicate }, "movement recorded");
        } catch (err) {
          log.error({ err, movementId: m.movementId, siteId: m.siteId }, "movement not recorded");
        }
      },
      async onEngineOutputs(outputs) {
        if (!service) return;
        for (const o of outputs) {
          if (o.type !== "excursion") continue;
          try {
            await service.onExcursion(o.event);
          } catch (err) {
            log.error(
              { err, excursionId: o.event.excursionId, unitId: o.event.unitId },
              "excursion not correlated with lots",
            );
          }
        }
        for (const g of recordingGaps(outputs)) {
          try {
            await service.onRecordingGap(g);
          } catch (err) {
            log.error({ err, gapId: g.gapId, unitId: g.unitId }, "recording gap not correlated with lots");
          }
        }
      },
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
