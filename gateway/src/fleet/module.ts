/**
 * The fleet module: remote configuration of the edge agents, behind the extension contract.
 *
 *   start ─ migrate fleet tables ─ load statuses
 *   subscription ct/v1/+/agent/+/config/reported (retained) ─▶ service.onReport ─▶ reported row
 *   REST /api/v1/agents/config, /api/v1/agents/{id}/config ─▶ fleetRoutes ─▶ service
 *   desired configurations ─▶ ctx.outbox (retained config/desired) ─▶ the host's dispatcher
 *   /metrics ─ coldtrace_fleet_agents{config="in_sync" | "pending" | …}
 */
import { topicFilters } from "@coldtrace/protocol";
import type { Extension, ExtensionFactory } from "../extension/extension.ts";
import { fleetRoutes } from "./routes.ts";
import { createFleetService, type FleetService } from "./service.ts";
import { fleetV1 } from "./store.ts";

export interface FleetExtension extends Extension {
  readonly service: FleetService;
}

export function fleetExtension(): ExtensionFactory {
  return (ctx): FleetExtension => {
    const log = ctx.log.child({ component: "fleet" });
    const service = createFleetService(ctx, log);
    return {
      name: "fleet",
      service,
      async start() {
        await ctx.sql.migrate("fleet", [fleetV1]);
        await service.load();
      },
      subscriptions: [
        {
          filter: topicFilters.configReported(),
          onMessage: (topic, payload) => service.onReport(topic, payload),
        },
      ],
      routes: fleetRoutes(service),
      metrics() {
        const gauges: Record<string, number> = {};
        for (const [status, n] of Object.entries(service.counts()))
          gauges[`coldtrace_fleet_agents{config="${status}"}`] = n;
        return { gauges };
      },
    };
  };
}
