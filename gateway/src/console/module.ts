/**
 * The console module as a gateway extension (extension/extension.ts): the one file that knows
 * the contract; the rest of gateway/src/console knows only the stores, the lots service, the
 * unit directory, a clock and a logger.
 *
 *   onReadingsStored, onAgentChanged ─▶ module (latest cache, live stream, tiles)
 *   subscriptions on the gateway's session: contract events (alarm, excursion, lot,
 *     eligibility) as published after their records committed ─▶ module.contractMessage
 *   routes (/api/v1/console/…, token) · pages (/console/, no token) · metrics
 */
import type { Extension, ExtensionFactory } from "../extension/extension.ts";
import type { LotService } from "../lots/index.ts";
import { type ConsoleModule, createConsoleModule } from "./console.ts";
import type { ProfileInForce } from "./service.ts";

export interface ConsoleExtensionOptions {
  /** The lots service, once the lots module has started (undefined when it is off). */
  lots?: () =>
    | Pick<LotService, "getLot" | "eligibility" | "holds" | "exposures" | "occupancy" | "occupancyIntervals">
    | undefined;
}

/** The console extension; `module` for tests and the benchmark (its live hub, its service). */
export interface ConsoleExtension extends Extension {
  readonly module: ConsoleModule;
}

export function consoleExtension(options: ConsoleExtensionOptions = {}): ExtensionFactory {
  return (ctx): ConsoleExtension => {
    const { config } = ctx;
    const profileOf = (unitId: string): ProfileInForce | undefined => {
      try {
        const profile = ctx.units.profile(unitId);
        const kind = ctx.units.get(unitId)?.kind;
        if (!profile || !kind) return undefined;
        const source = config.profiles.byUnit[unitId]
          ? "byUnit"
          : config.profiles.byKind[kind]
            ? "byKind"
            : "defaults";
        return { profile, source };
      } catch {
        return undefined; // invalid configured profile: the engine refused it too, and logged why
      }
    };
    const module = createConsoleModule({
      config: config.console,
      records: ctx.records,
      readings: ctx.readings,
      ...(options.lots ? { lots: options.lots } : {}),
      profileOf,
      now: () => ctx.clock.now(),
      log: ctx.log,
    });
    return {
      name: "console",
      start: () => module.start(),
      stop: () => module.stop(),
      routes: module.apiPlugin,
      pages: module.sitePlugin,
      onReadingsStored: (readings) => module.readingsStored(readings),
      onAgentChanged: (agent) => module.agentChanged(agent),
      subscriptions: module.subscriptions.map((filter) => ({
        filter,
        onMessage: async (topic: string, payload: Buffer) => module.contractMessage(topic, payload),
      })),
      metrics: () => ({
        gauges: { coldtrace_console_live_clients: module.hub.subscribers },
        counters: {
          coldtrace_console_readings_streamed_total: module.hub.readingsSent,
          coldtrace_console_events_rejected_total: module.rejected,
        },
      }),
      module,
    };
  };
}
