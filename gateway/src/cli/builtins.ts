/**
 * The composition root's choice of modules: the extensions a gateway runs, in start order.
 * `coldtrace-gateway run` uses this list; tests and embedding applications pass it (or their
 * own list) to `startGateway({ extensions })`. The host (app/) never names a module.
 *
 *   excursions   the event-time engine for ingest, unit profiles, engine figures in /metrics
 *   lots         occupancy, quarantine, eligibility for the planner (unless lots.enabled: false)
 *   grafana      status series for the dashboards beside the readings (readings in InfluxDB only)
 *   notify       who was told about each alarm (records reported by the escalation flow)
 *   fleet        remote configuration of the agents: desired configurations, their reports
 *   console      the web console: its API, live stream and pages (unless console.enabled: false
 *                or the API is off); reads lots through the lots module's service
 */
import type { GatewayConfig } from "../config/schema.ts";
import { consoleExtension } from "../console/module.ts";
import { excursionsExtension } from "../excursions/module.ts";
import type { ExtensionContext, ExtensionFactory } from "../extension/extension.ts";
import { fleetExtension } from "../fleet/module.ts";
import { grafanaExtension } from "../grafana/module.ts";
import { type LotsExtension, lotsExtension } from "../lots/module.ts";
import { notifyExtension } from "../notify/module.ts";

export function builtinExtensions(config: GatewayConfig): ExtensionFactory[] {
  // The console reads lots through the lots module's service, once that has started.
  let lots: LotsExtension | undefined;
  const lotsFactory = lotsExtension();
  return [
    excursionsExtension(),
    ...(config.lots.enabled
      ? [
          (ctx: ExtensionContext) => {
            lots = lotsFactory(ctx) as LotsExtension;
            return lots;
          },
        ]
      : []),
    grafanaExtension(),
    notifyExtension(),
    fleetExtension(),
    ...(config.console.enabled && config.api.enabled
      ? [consoleExtension({ lots: () => lots?.service })]
      : []),
  ];
}
