/**
 * The console module: the web console's API, its live stream and its static site, built from
 * what the gateway hands it (stores, the lots service, profiles, clock, logger). It knows
 * nothing of how the gateway is wired; `module.ts` connects it to the extension contract.
 *
 *   ingest: readings stored ────────────────▶ latest cache, live `readings`
 *   ingest: agent births and states ─────────▶ live `agent`; tiles re-derived
 *   broker: contract events (alarm, excursion, lot, eligibility)
 *     ─ decodeMessage (contract) ─▶ live events; tiles re-derived when one may have changed
 *   fastify: apiPlugin under /api/v1 (token), sitePlugin at / (assets, no token)
 *
 * Events come from the broker, as the planner sees them: published after their records were
 * committed, so the console never shows an alarm the records do not have.
 */
import { type AlarmEvent, decodeMessage, type ExcursionEvent, topicFilters } from "@coldtrace/protocol";
import type { FastifyPluginAsync } from "fastify";
import { alarmRecordOf, excursionRecordOf } from "../ingest/ingest.ts";
import type { AgentRecord, StoredReading } from "../storage/types.ts";
import { LiveHub } from "./live.ts";
import { consoleRoutes } from "./routes.ts";
import { ConsoleService, type ConsoleServiceDeps } from "./service.ts";
import { consoleSite, defaultAssetsDir } from "./site.ts";

/** What the module is built from: the service's dependencies; it makes the live hub itself. */
export type ConsoleModuleDeps = Omit<ConsoleServiceDeps, "hub">;

export interface ConsoleModule {
  readonly hub: LiveHub;
  readonly service: ConsoleService;
  /** Routes under /api/v1 (with the API's authentication). */
  readonly apiPlugin: FastifyPluginAsync;
  /** The built console at /console/ (no authentication). */
  readonly sitePlugin: FastifyPluginAsync;
  /** Broker topic filters whose messages go to `contractMessage`. */
  readonly subscriptions: readonly string[];
  /** Bad broker messages ignored (not the contract). */
  readonly rejected: number;
  readingsStored(readings: readonly StoredReading[]): void;
  /** An agent's birth or state was stored (online, offline, new units). */
  agentChanged(agent: AgentRecord): void;
  /** A message from the broker on one of `subscriptions`. */
  contractMessage(topic: string, payload: Buffer): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createConsoleModule(deps: ConsoleModuleDeps): ConsoleModule {
  const log = deps.log.child({ component: "console" });
  const hub = new LiveHub({
    replayEvents: deps.config.replayEvents,
    heartbeatMs: deps.config.heartbeatMs,
    now: deps.now,
  });
  const service = new ConsoleService({
    config: deps.config,
    records: deps.records,
    readings: deps.readings,
    ...(deps.lots ? { lots: deps.lots } : {}),
    profileOf: deps.profileOf,
    hub,
    now: deps.now,
    log,
  });
  // Excursions send an update at every reading; only a tier change or an end moves a tile.
  const excursionTiers = new Map<string, string>();
  let rejected = 0;

  const onExcursion = (event: ExcursionEvent) => {
    hub.publish("excursion", excursionRecordOf({ type: "excursion", event }), {
      siteId: event.siteId,
      unitId: event.unitId,
    });
    const before = excursionTiers.get(event.excursionId);
    if (event.type === "excursion.closed") excursionTiers.delete(event.excursionId);
    else excursionTiers.set(event.excursionId, event.tier);
    if (event.type !== "excursion.updated" || before !== event.tier) service.invalidate();
  };

  const onAlarm = (event: AlarmEvent) => {
    hub.publish("alarm", alarmRecordOf({ type: "alarm", event }), {
      siteId: event.siteId,
      unitId: event.unitId,
    });
    service.invalidate();
  };

  return {
    hub,
    service,
    apiPlugin: consoleRoutes(service, hub),
    sitePlugin: consoleSite({ assetsDir: deps.config.assetsDir ?? defaultAssetsDir(), log }),
    // Agents' births and states are not here: the embedded broker hands them to ingest only
    // (never to the gateway's account), so they come through `agentChanged`.
    subscriptions: [topicFilters.events(), topicFilters.eligibility()],
    get rejected() {
      return rejected;
    },
    readingsStored(readings) {
      service.latest.apply(readings);
      hub.readings(readings);
      service.readingsOf(new Set(readings.map((r) => r.unitId)));
    },
    agentChanged(agent) {
      const { agentId, siteId, state, lastSeenAt } = agent;
      hub.publish("agent", { agentId, siteId, state, lastSeenAt }, { siteId });
      service.invalidate();
    },
    contractMessage(topic, payload) {
      let m: ReturnType<typeof decodeMessage>;
      try {
        m = decodeMessage(topic, payload);
      } catch (err) {
        rejected++;
        log.debug({ err, topic }, "broker message not of the contract; ignored");
        return;
      }
      switch (m.kind) {
        case "alarm":
          return onAlarm(m.payload);
        case "excursion":
          return onExcursion(m.payload);
        case "lot":
          return hub.publish("lot", m.payload, { siteId: m.payload.siteId });
        case "eligibility":
          return hub.publish("eligibility", m.payload, { siteId: m.payload.siteId });
        default:
          return;
      }
    },
    async start() {
      hub.start();
      await service.start();
      log.info({}, "console module started");
    },
    async stop() {
      await service.stop();
      hub.stop();
    },
  };
}
