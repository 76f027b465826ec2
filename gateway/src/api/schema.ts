/**
 * Schema-first routes from zod models. A route declares its request (body, querystring,
 * params) and response schemas as zod models; `routeSchema` turns them into the JSON Schema
 * (OpenAPI 3.0 dialect, `z.toJSONSchema`) that /openapi.json shows, plus the one error body for
 * every 4xx and 5xx. In a `zodRoutes` scope the zod model is also the validator: the handler
 * parses with it (`parseOr`, or the service does), so one schema and one issue formatter make
 * the message, and fastify's ajv and response serializer stand aside (JSON.stringify).
 *
 *   app.get("/lots/holds", { schema: routeSchema({ tags: ["lots"], querystring: holdQuery,
 *     response: { 200: z.array(holdRecord) } }) }, async (req) => …parseOr(…, holdQuery, …, req.query))
 *
 * docs/development.md "Adding a route" shows the convention for new modules.
 */
import type { FastifyInstance, FastifySchema } from "fastify";
import { z } from "zod";
import { apiErrorSchema } from "./errors.ts";

/** A zod model as the OpenAPI 3.0 JSON Schema of one side (`input`: requests, `output`: answers). */
export function jsonSchemaOf(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const { $schema: _drop, ...json } = z.toJSONSchema(schema, {
    io,
    target: "openapi-3.0",
    unrepresentable: "any",
  });
  return json;
}

export interface ZodRouteSchema {
  tags?: string[];
  summary?: string;
  description?: string;
  body?: z.ZodType | Record<string, unknown>;
  querystring?: z.ZodType;
  params?: z.ZodType;
  /** Content types the body may have (default application/json). */
  consumes?: string[];
  /** Answers by status; every 4xx and 5xx is the API error body. */
  response: Record<number, z.ZodType>;
}

const isZod = (s: unknown): s is z.ZodType => s instanceof z.ZodType;

/** The fastify route schema for zod models (see the header). */
export function routeSchema(s: ZodRouteSchema): FastifySchema {
  const response: Record<string, unknown> = {};
  for (const [status, model] of Object.entries(s.response)) response[status] = jsonSchemaOf(model, "output");
  response["4xx"] = apiErrorSchema;
  response["5xx"] = apiErrorSchema;
  return {
    ...(s.tags ? { tags: s.tags } : {}),
    ...(s.summary ? { summary: s.summary } : {}),
    ...(s.description ? { description: s.description } : {}),
    ...(s.consumes ? { consumes: s.consumes } : {}),
    ...(s.body ? { body: isZod(s.body) ? jsonSchemaOf(s.body, "input") : s.body } : {}),
    ...(s.querystring ? { querystring: jsonSchemaOf(s.querystring, "input") } : {}),
    ...(s.params ? { params: jsonSchemaOf(s.params, "input") } : {}),
    response,
  } as FastifySchema;
}

/**
 * Make `app` (a plugin's encapsulated instance) a zod scope: requests are validated by the zod
 * models in the handlers, answers serialised with JSON.stringify.
 */
export function zodRoutes(app: FastifyInstance): void {
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
}
