/**
 * The Grafana status series inside the running gateway: an extension that, when the readings
 * go to InfluxDB 1.x, writes what the records and the agents say beside them for the
 * provisioned dashboards (dashboards/grafana/, docs/integrator/grafana.md). The writer and
 * the series are storage/influx-status.ts; this file connects it to the gateway:
 *
 *   timer (every sampleIntervalMs, unref'd) ─▶ writer.sample(): records, health, ingest figures
 *   engine ─ excursion outputs ─ onEngineOutputs ─▶ writer.excursion()   (late data included)
 *   agents ─ ct/v1/+/agent/+/health ─ subscription ─▶ writer.probeHealth() (ingest stores no health)
 *
 * With readings in SQLite or PostgreSQL it does nothing (the API serves the same records).
 * Nothing here can fail ingest: the writer logs and retries at the next sample.
 */
import { decodeMessage, TOPIC_ROOT } from "@coldtrace/protocol";
import type { Extension, ExtensionFactory } from "../extension/extension.ts";
import { createInfluxStatusWriter, type InfluxStatusWriter } from "../storage/influx-status.ts";

export interface GrafanaExtensionOptions {
  /** How often the status series are written (default 10 s). */
  sampleIntervalMs?: number;
}

/** Agents' probe health messages (contract topic `ct/v1/{site}/agent/{agent}/health`). */
export const HEALTH_FILTER = `${TOPIC_ROOT}/+/agent/+/health`;

export function grafanaExtension(opts: GrafanaExtensionOptions = {}): ExtensionFactory {
  return (ctx): Extension => {
    const readings = ctx.config.storage.readings;
    if (readings.backend !== "influx") return { name: "grafana" };
    const log = ctx.log.child({ component: "grafana" });
    const everyMs = opts.sampleIntervalMs ?? 10_000;
    let writer: InfluxStatusWriter | undefined;
    let timer: NodeJS.Timeout | undefined;
    return {
      name: "grafana",
      async start() {
        writer = createInfluxStatusWriter(
          {
            url: readings.url,
            database: readings.database,
            gatewayId: ctx.config.gatewayId,
            ...(readings.retentionPolicy ? { retentionPolicy: readings.retentionPolicy } : {}),
          },
          {
            records: ctx.records,
            limitsOf: (u) => {
              try {
                return ctx.units.profile(u.unitId);
              } catch {
                return undefined; // an invalid configured profile: the engine refused it and said so
              }
            },
            ...(ctx.ingestFigures ? { ingest: ctx.ingestFigures } : {}),
            now: () => ctx.clock.now(),
            log,
          },
        );
        const w = writer;
        timer = setInterval(() => void w.sample(), everyMs);
        timer.unref();
      },
      async onEngineOutputs(outputs) {
        for (const o of outputs) if (o.type === "excursion") writer?.excursion(o.event);
      },
      subscriptions: [
        {
          filter: HEALTH_FILTER,
          async onMessage(topic, payload) {
            const msg = decodeMessage(topic, payload);
            if (msg.kind === "probeHealth") writer?.probeHealth(msg.topic.siteId, msg.payload);
          },
        },
      ],
      async stop() {
        clearInterval(timer);
        // The last state before the gateway stops (agents offline, excursions as they are).
        await writer?.sample();
        await writer?.close();
      },
    };
  };
}
