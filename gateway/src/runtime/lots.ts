/**
 * The lots module inside the running gateway: a `GatewayExtension` that opens the LotService
 * on the records database and connects it to ingest, the MQTT session and the REST API.
 *
 *   ERP ─ ct/v1/{site}/movements ─▶ ingest ─ onMovement ─────────▶ recordMovement
 *   engine ─ excursion outputs ──────────── onEngineOutputs ──────▶ onExcursion
 *   engine ─ gap outputs, reason recording_gap (engine state) ────▶ onRecordingGap (per unit)
 *   gateway MQTT session (onConnected) ─▶ outbox dispatcher ─▶ lot events, retained eligibility
 *   timer (lots.expirySweepMs, unref'd) ─▶ sweepExpired, prune sent outbox rows
 *   REST /api/v1/lots/… ─▶ lotsPlugin
 *
 * The range limits used for a lot's exposure (when its product has no labelled range on a
 * side) are the range of the unit's profile, merged exactly as the engine adapter merges it
 * (runtime/engine.ts: kind defaults ← profiles.byKind ← profiles.byUnit).
 *
 * A lots failure is logged, never thrown into ingest: the alarm and excursion events of the
 * same batch must still be published (docs/qa/quarantine.md: QA reviews the logged cause).
 */
import type { Logger } from "pino";
import type { EngineOutput } from "../ingest/ports.ts";
import { createLotService, type LotService, lotsPlugin, type QuarantinePolicy } from "../lots/index.ts";
import type { DispatcherOptions } from "../outbox/index.ts";
import type { RecordDb } from "../outbox/sql.ts";
import { configuredUnitProfile } from "./engine.ts";
import type { ExtensionContext, GatewayExtension } from "./gateway.ts";

/** How long stop waits for unsent lot events to reach the broker before closing the session. */
const STOP_DRAIN_MS = 5000;

/** The records database of the open storage, as the lots service takes it. */
export function recordDbOf(storage: ExtensionContext["storage"]): RecordDb | undefined {
  if (storage.sqlite) return { kind: "sqlite", db: storage.sqlite };
  if (storage.pg) return { kind: "postgres", pool: storage.pg };
  return undefined;
}

export interface LotsExtensionOptions {
  /** Overrides config.lots.policy. */
  policy?: QuarantinePolicy;
  /** Outbox dispatcher tuning (batch size, poll interval). */
  dispatcher?: DispatcherOptions;
  /** Called with the service once it exists (tests, embedding applications). */
  onService?: (service: LotService) => void;
}

/** Recording gaps among engine outputs, one per unit (the engine's gap state `recording_gap`). */
function recordingGaps(outputs: readonly EngineOutput[]) {
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

/**
 * The lots extension for `startGateway({ extensions })`. `startGateway` installs it by itself
 * when `config.lots.enabled` (the default), so most callers never call this.
 */
export function lotsExtension(
  options: LotsExtensionOptions = {},
): (ctx: ExtensionContext) => Promise<GatewayExtension> {
  return async (ctx) => {
    const log: Logger = ctx.log.child({ component: "lots-runtime" });
    const db = recordDbOf(ctx.storage);
    if (!db) {
      log.warn({}, "lots module not started: the records store is neither SQLite nor PostgreSQL");
      return {};
    }
    const cfg = ctx.config.lots;
    const service = await createLotService({
      db,
      readings: ctx.storage.readings,
      policy: options.policy ?? cfg.policy,
      clock: { now: ctx.now },
      log: ctx.log,
      unitLimits(unitId) {
        const kind = ctx.unitKind(unitId);
        if (!kind) return undefined;
        try {
          const { range } = configuredUnitProfile(ctx.config, unitId, kind);
          return {
            ...(range.high === undefined ? {} : { high: range.high }),
            ...(range.low === undefined ? {} : { low: range.low }),
          };
        } catch (err) {
          // The engine refused the same profile when the unit registered; it logged that.
          log.warn({ err, unitId }, "unit profile invalid; product range only");
          return undefined;
        }
      },
    });
    options.onService?.(service);

    let sweeping: Promise<void> = Promise.resolve();
    const sweep = () => {
      sweeping = (async () => {
        try {
          await service.sweepExpired();
          const pruned = await service.outbox.prune(ctx.now() - cfg.outboxRetentionMs);
          if (pruned > 0) log.debug({ pruned }, "sent outbox rows pruned");
        } catch (err) {
          log.error({ err }, "lots expiry sweep failed");
        }
      })();
    };
    sweep();
    const timer = setInterval(sweep, cfg.expirySweepMs);
    timer.unref();

    log.info({ backend: db.kind, policy: service.policy }, "lots module started");
    return {
      listeners: {
        async onMovement(m) {
          try {
            const r = await service.recordMovement(m);
            log.debug({ movementId: m.movementId, duplicate: r.duplicate }, "movement recorded");
          } catch (err) {
            log.error({ err, movementId: m.movementId, siteId: m.siteId }, "movement not recorded");
          }
        },
        async onEngineOutputs(outputs) {
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
      },
      apiPlugins: [lotsPlugin(service)],
      onConnected(connection) {
        const dispatcher = service.outbox.startDispatcher(connection.client, ctx.log, options.dispatcher);
        return async () => {
          // Give committed events a moment to reach the broker; what is left goes after restart.
          let timeout: NodeJS.Timeout | undefined;
          await Promise.race([
            dispatcher.drained(),
            new Promise<void>((resolve) => {
              timeout = setTimeout(resolve, STOP_DRAIN_MS);
              timeout.unref();
            }),
          ]);
          clearTimeout(timeout);
          await dispatcher.stop();
        };
      },
      async stop() {
        clearInterval(timer);
        await sweeping;
      },
    };
  };
}
