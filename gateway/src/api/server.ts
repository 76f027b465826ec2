/**
 * The gateway's REST API (fastify 5), schema-first: every route declares JSON schemas, which
 * validate requests and feed the OpenAPI 3 document served at /openapi.json (@fastify/swagger).
 *
 *   /health, /metrics, /openapi.json     no token (probes, Prometheus, tooling)
 *   /docs                                 the API page (Swagger UI, served from the package), no token
 *   /api/v1/…                            Authorization: Bearer <token> (sha256 in the config)
 *
 * Errors have one shape (api/errors.ts): `{ statusCode, code, error, message, issues }`, e.g. a bad
 * request is 400 CT_API_BAD_REQUEST naming the field: `query.from: expected integer`.
 * The extensions' routes (extension/extension.ts `routes`) come in `plugins`; they are
 * registered under /api/v1 with the same authentication.
 * Their `pages` (the console's static site) come in `sitePlugins`, registered at the root
 * without it.
 */
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, {
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifySchema,
  LogController,
} from "fastify";
import type { Logger } from "pino";
import type { DomainEvent } from "../kernel/events.ts";
import type { AlarmState, ReadingStore, RecordStore } from "../storage/types.ts";
import { TokenVerifier } from "./auth.ts";
import { badRequest, handleError, handleNotFound, notFound, schemaError, unauthorized } from "./errors.ts";
import * as s from "./schemas.ts";

export interface ApiDeps {
  records: RecordStore;
  readings: ReadingStore;
  tokens: readonly { name: string; hash: string }[];
  /** Acknowledge through the engine, so the event is stored and published. */
  acknowledge(
    alarmId: string,
    ack: { by: string; comment: string; correctiveAction: string },
  ): Promise<DomainEvent[]>;
  metricsText(): string;
  log?: Logger;
  /** The extensions' routes, registered under /api/v1 with authentication. */
  plugins?: readonly FastifyPluginAsync[];
  /** Plugins registered at the root without authentication (the console's pages). */
  sitePlugins?: readonly FastifyPluginAsync[];
}

function checkRange(q: { from: number; to: number }): void {
  if (q.to <= q.from) throw badRequest("query.to: must be after query.from");
}

/** A registered route, as the route walk (test/api/routes.test.ts) checks it. */
export interface ApiRoute {
  method: string;
  url: string;
  schema: FastifySchema | undefined;
}

const registered = new WeakMap<object, ApiRoute[]>();

/** Every route registered on an API built by `buildApi` (HEAD routes fastify adds included). */
export function apiRoutes(app: FastifyInstance): readonly ApiRoute[] {
  return registered.get(app) ?? [];
}

export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log?.child({ component: "api" }),
    logController: new LogController({ disableRequestLogging: true }),
    schemaErrorFormatter: (errors, dataVar) => schemaError(errors as never, dataVar),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: true } },
  });
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Coldtrace gateway API",
        version: "1",
        description: "Units, probes, agents, readings, alarms and excursions of the Coldtrace gateway.",
      },
      components: {
        securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      },
      security: [{ bearer: [] }],
    },
  });

  // The human-readable API page, from the same document; Swagger UI's assets ship inside the
  // package (no CDN: a store network may have no internet).
  await app.register(swaggerUi, {
    routePrefix: "/docs",
    staticCSP: true,
    uiConfig: { docExpansion: "list", deepLinking: true, tryItOutEnabled: false },
  });

  // One error shape for every route, the modules' included (api/errors.ts).
  app.setErrorHandler(handleError);
  app.setNotFoundHandler(handleNotFound);
  const routes: ApiRoute[] = [];
  app.addHook("onRoute", (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const method of methods)
      routes.push({ method, url: r.url, schema: r.schema as FastifySchema | undefined });
  });
  registered.set(app, routes);

  const verifier = new TokenVerifier(deps.tokens);

  app.get("/health", { schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/metrics", { schema: { hide: true } }, async (_req, reply) => {
    reply.type("text/plain; version=0.0.4");
    return deps.metricsText();
  });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  for (const plugin of deps.sitePlugins ?? []) await app.register(plugin);

  await app.register(
    async (api) => {
      api.addHook("onRequest", async (req, reply) => {
        const who = verifier.verify(req.headers.authorization);
        if (!who) return unauthorized(reply);
        (req as { tokenName?: string }).tokenName = who;
      });

      api.get(
        "/units",
        { schema: { tags: ["units"], querystring: s.siteQuery, response: { ...s.errors, 200: s.unitList } } },
        async (req) => deps.records.listUnits((req.query as { siteId?: string }).siteId),
      );
      api.get(
        "/units/:unitId",
        {
          schema: {
            tags: ["units"],
            params: s.unitParams,
            querystring: s.noQuery,
            response: { ...s.errors, 200: s.unit },
          },
        },
        async (req) => {
          const unit = await deps.records.getUnit((req.params as { unitId: string }).unitId);
          if (!unit) throw notFound("unit");
          return unit;
        },
      );
      api.get(
        "/probes",
        {
          schema: { tags: ["units"], querystring: s.probeQuery, response: { ...s.errors, 200: s.probeList } },
        },
        async (req) => deps.records.listProbes((req.query as { unitId?: string }).unitId),
      );
      api.get(
        "/agents",
        {
          schema: { tags: ["agents"], querystring: s.siteQuery, response: { ...s.errors, 200: s.agentList } },
        },
        async (req) =>
          (await deps.records.listAgents((req.query as { siteId?: string }).siteId)).map((a) => ({
            agentId: a.agentId,
            siteId: a.siteId,
            sessionId: a.sessionId,
            state: a.state,
            lastSeenAt: a.lastSeenAt,
            configHash: a.configHash,
          })),
      );
      api.get(
        "/units/:unitId/readings",
        {
          schema: {
            tags: ["readings"],
            params: s.unitParams,
            querystring: s.readingQuery,
            response: { ...s.errors, 200: s.readingsResponse },
          },
        },
        async (req) => {
          const { unitId } = req.params as { unitId: string };
          const q = req.query as {
            from: number;
            to: number;
            probeId?: string;
            bucketMs?: number;
            limit?: number;
          };
          checkRange(q);
          if (q.bucketMs !== undefined) {
            const buckets = await deps.readings.downsample({
              unitId,
              from: q.from,
              to: q.to,
              bucketMs: q.bucketMs,
              ...(q.probeId === undefined ? {} : { probeId: q.probeId }),
            });
            return { unitId, from: q.from, to: q.to, bucketMs: q.bucketMs, buckets };
          }
          const readings = await deps.readings.range({
            unitId,
            from: q.from,
            to: q.to,
            limit: q.limit ?? 10_000,
            ...(q.probeId === undefined ? {} : { probeId: q.probeId }),
          });
          return { unitId, from: q.from, to: q.to, readings };
        },
      );
      api.get(
        "/units/:unitId/latest",
        {
          schema: {
            tags: ["readings"],
            params: s.unitParams,
            querystring: s.noQuery,
            response: { ...s.errors, 200: s.readingList },
          },
        },
        async (req) => deps.readings.latest((req.params as { unitId: string }).unitId),
      );
      api.get(
        "/alarms",
        {
          schema: {
            tags: ["alarms"],
            querystring: s.alarmQuery,
            response: { ...s.errors, 200: s.alarmList },
          },
        },
        async (req) => {
          const q = req.query as {
            siteId?: string;
            unitId?: string;
            state?: AlarmState;
            from?: number;
            to?: number;
          };
          return deps.records.listAlarms(q);
        },
      );
      api.get(
        "/alarms/:alarmId",
        {
          schema: {
            tags: ["alarms"],
            params: s.alarmParams,
            querystring: s.noQuery,
            response: { ...s.errors, 200: s.alarm },
          },
        },
        async (req) => {
          const alarm = await deps.records.getAlarm((req.params as { alarmId: string }).alarmId);
          if (!alarm) throw notFound("alarm");
          return alarm;
        },
      );
      api.post(
        "/alarms/:alarmId/acknowledge",
        {
          schema: {
            tags: ["alarms"],
            params: s.alarmParams,
            querystring: s.noQuery,
            body: s.ackBody,
            response: { ...s.errors, 200: s.alarm },
          },
        },
        async (req) => {
          const { alarmId } = req.params as { alarmId: string };
          const alarm = await deps.records.getAlarm(alarmId);
          if (!alarm) throw notFound("alarm");
          const body = req.body as { by: string; comment: string; correctiveAction: string };
          await deps.acknowledge(alarmId, body);
          return (await deps.records.getAlarm(alarmId)) ?? alarm;
        },
      );
      api.get(
        "/excursions",
        {
          schema: {
            tags: ["excursions"],
            querystring: s.excursionQuery,
            response: { ...s.errors, 200: s.excursionList },
          },
        },
        async (req) => deps.records.listExcursions(req.query as Record<string, never>),
      );
      api.get(
        "/excursions/:excursionId",
        {
          schema: {
            tags: ["excursions"],
            params: s.excursionParams,
            querystring: s.noQuery,
            response: { ...s.errors, 200: s.excursion },
          },
        },
        async (req) => {
          const e = await deps.records.getExcursion((req.params as { excursionId: string }).excursionId);
          if (!e) throw notFound("excursion");
          return e;
        },
      );
      api.get(
        "/gaps",
        { schema: { tags: ["gaps"], querystring: s.gapQuery, response: { ...s.errors, 200: s.gapList } } },
        async (req) => deps.records.listGaps(req.query as Record<string, never>),
      );
      for (const plugin of deps.plugins ?? []) await api.register(plugin);
    },
    { prefix: "/api/v1" },
  );
  await app.ready();
  return app as unknown as FastifyInstance;
}
