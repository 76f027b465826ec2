/**
 * The console's REST routes, a fastify plugin registered under /api/v1 with the API's token
 * authentication (stage 1; console sign-in with user accounts comes with the QA records API).
 * Schema-first: every route declares its query and response schemas, so they validate
 * requests and appear in /openapi.json under the `console` tag.
 *
 *   GET /console/settings              languages, sites and their time zones, who is signed in
 *   GET /console/fleet?siteId=         the overview: every unit's tile, worst first
 *   GET /console/units/{unitId}        one unit: tile, profile in force, probes, lots inside
 *   GET /console/inbox?siteId=&hours=  open and recent alarms and excursions
 *   GET /console/lots?siteId=          lots at a site with their eligibility
 *   GET /console/lot?lotId=            one lot: eligibility, holds, exposures, stays
 *   GET /console/live?siteId=&unitId=  server-sent events (see live.ts)
 *
 * The pages acknowledge alarms with the existing POST /api/v1/alarms/{alarmId}/acknowledge.
 */
import { fastifySSE } from "@fastify/sse";
import type { FastifyError, FastifyPluginAsync, FastifyReply } from "fastify";
import { errors, noQuery } from "../api/schemas.ts";
import type { LiveHub, LiveMessage } from "./live.ts";
import type { ConsoleService } from "./service.ts";
import {
  consoleSettings,
  fleetView,
  inboxView,
  lotListView,
  lotView,
  routeSchema,
  unitDetailView,
} from "./views.ts";

const id = { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$" } as const;

/** A browser that has this much unsent stream data is too slow: it is dropped and reconnects. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

function notFound(message: string): FastifyError {
  const err = new Error(message) as FastifyError;
  err.statusCode = 404;
  err.code = "CT_API_NOT_FOUND";
  return err;
}

const tags = ["console"];

export function consoleRoutes(service: ConsoleService, hub: LiveHub): FastifyPluginAsync {
  return async (app) => {
    await app.register(fastifySSE, { heartbeatInterval: 0 });
    const streams = new Set<FastifyReply>();
    // Open streams would keep fastify's close() waiting for ever.
    app.addHook("preClose", async () => {
      for (const reply of streams) reply.sse.close();
      streams.clear();
    });

    app.get(
      "/console/settings",
      {
        schema: {
          tags,
          summary: "Console settings",
          querystring: noQuery,
          response: { ...errors, 200: routeSchema(consoleSettings) },
        },
      },
      async (req) => service.settings((req as { tokenName?: string }).tokenName ?? "unknown"),
    );

    app.get(
      "/console/fleet",
      {
        schema: {
          tags,
          summary: "Fleet overview: every unit's state, latest temperatures, agent and alarms, worst first",
          querystring: { type: "object", additionalProperties: false, properties: { siteId: id } },
          response: { ...errors, 200: routeSchema(fleetView) },
        },
      },
      async (req) => service.fleet((req.query as { siteId?: string }).siteId),
    );

    app.get(
      "/console/units/:unitId",
      {
        schema: {
          tags,
          summary: "One unit with the profile in force, its probes and the lots inside",
          params: { type: "object", required: ["unitId"], properties: { unitId: id } },
          querystring: noQuery,
          response: { ...errors, 200: routeSchema(unitDetailView) },
        },
      },
      async (req) => {
        const unit = await service.unit((req.params as { unitId: string }).unitId);
        if (!unit) throw notFound("unit not found");
        return unit;
      },
    );

    app.get(
      "/console/inbox",
      {
        schema: {
          tags,
          summary: "Open alarms and excursions, and those that ended within the last hours",
          querystring: {
            type: "object",
            additionalProperties: false,
            properties: {
              siteId: id,
              hours: { type: "integer", minimum: 1, maximum: 24 * 31, default: 24 },
            },
          },
          response: { ...errors, 200: routeSchema(inboxView) },
        },
      },
      async (req) => {
        const q = req.query as { siteId?: string; hours: number };
        return service.inbox({ hours: q.hours, ...(q.siteId ? { siteId: q.siteId } : {}) });
      },
    );

    app.get(
      "/console/lots",
      {
        schema: {
          tags,
          summary: "Lots at a site and their eligibility",
          querystring: {
            type: "object",
            additionalProperties: false,
            required: ["siteId"],
            properties: { siteId: id },
          },
          response: { ...errors, 200: routeSchema(lotListView) },
        },
      },
      async (req) => {
        const r = await service.lots((req.query as { siteId: string }).siteId);
        if (!r) throw notFound("the lots module is not running");
        return r;
      },
    );

    app.get(
      "/console/lot",
      {
        schema: {
          tags,
          summary: "One lot: eligibility per site, holds, exposures, stays",
          querystring: {
            type: "object",
            additionalProperties: false,
            required: ["lotId"],
            properties: { lotId: { type: "string", minLength: 1, maxLength: 64 } },
          },
          response: { ...errors, 200: routeSchema(lotView) },
        },
      },
      async (req) => {
        const lot = await service.lot((req.query as { lotId: string }).lotId);
        if (!lot) throw notFound("lot not found (or the lots module is not running)");
        return lot;
      },
    );

    app.get(
      "/console/live",
      {
        sse: { kind: "only", heartbeat: false },
        schema: {
          tags,
          summary: "Live stream (text/event-stream) of readings, unit tiles, alarms, excursions, lots",
          description:
            "Events: hello, readings, unit, alarm, excursion, lot, eligibility, agent, ping, resync. " +
            "Send Last-Event-ID to replay what was missed; `resync` means reload.",
          querystring: {
            type: "object",
            additionalProperties: false,
            properties: { siteId: id, unitId: id },
          },
          response: {
            ...errors,
            200: { type: "string", description: "text/event-stream: one server-sent event per message" },
          },
        },
      },
      async (req, reply) => {
        const q = req.query as { siteId?: string; unitId?: string };
        reply.sse.keepAlive();
        streams.add(reply);
        const send = (m: LiveMessage) => {
          if (!reply.sse.isConnected) return;
          if (reply.raw.writableLength > MAX_BUFFERED_BYTES) {
            req.log.warn({ buffered: reply.raw.writableLength }, "console live stream too slow; dropped");
            reply.sse.close();
            return;
          }
          reply.sse.send(m).catch(() => reply.sse.close());
        };
        const off = hub.subscribe(
          { filter: { siteId: q.siteId, unitId: q.unitId }, send },
          reply.sse.lastEventId,
        );
        reply.sse.onClose(() => {
          off();
          streams.delete(reply);
        });
      },
    );
  };
}
