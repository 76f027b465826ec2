/**
 * REST for fleet configuration, under /api/v1 (token authentication by the host), schema-first:
 *
 *   GET /agents/config?siteId=        every agent: desired version, what it reports, status
 *   GET /agents/{agentId}/config      one agent, with the desired document and the agent's issues
 *   PUT /agents/{agentId}/config      send a desired configuration: { config, graceMs?, issuedBy? }
 *                                     → 202 { agentId, version, documentHash, topic }
 *
 * `config` is the agent's configuration document, validated with the agent's own schema
 * (protocol/api/configDesired.schema.json, property `config`); a 400 names every bad field
 * (`config.mqtt.password: secrets are never sent …`).
 */
import { isColdtraceError } from "@coldtrace/protocol";
import type { FastifyPluginAsync } from "fastify";
import { errors, noQuery } from "../api/schemas.ts";
import type { FleetService } from "./service.ts";

const id = { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$" } as const;
const ms = { type: "integer", description: "UTC epoch milliseconds" } as const;
const hash = { type: "string", pattern: "^[0-9a-f]{64}$" } as const;
const status = {
  type: "string",
  enum: ["in_sync", "pending", "applying", "rejected", "rolled_back", "not_managed"],
  description:
    "in_sync: the agent confirmed the desired version; pending: no answer for it yet; applying: on trial; rejected / rolled_back: refused, or rolled back by the agent; not_managed: never sent one",
} as const;

const desired = {
  type: ["object", "null"],
  properties: {
    version: { type: "integer" },
    documentHash: hash,
    issuedAt: ms,
    issuedBy: { type: ["string", "null"] },
    graceMs: { type: ["integer", "null"] },
  },
} as const;

const reported = {
  type: ["object", "null"],
  properties: {
    state: { type: "string", enum: ["applied", "trial", "rejected", "rolled_back"] },
    running: {
      type: "object",
      properties: {
        source: { type: "string", enum: ["file", "remote"] },
        version: { type: ["integer", "null"] },
        documentHash: hash,
        configHash: hash,
      },
    },
    desiredVersion: { type: "integer" },
    reason: { type: "object", properties: { code: { type: "string" }, message: { type: "string" } } },
    at: ms,
    receivedAt: ms,
  },
} as const;

const agentView = {
  type: "object",
  properties: {
    agentId: id,
    siteId: { type: "string" },
    status,
    inSync: { type: "boolean" },
    desired,
    reported,
  },
} as const;

const issue = {
  type: "object",
  properties: { path: { type: "string" }, message: { type: "string" }, line: { type: "integer" } },
} as const;

const errorBody = {
  type: "object",
  properties: {
    statusCode: { type: "integer" },
    error: { type: "string" },
    code: { type: "string" },
    message: { type: "string" },
    issues: { type: "array", items: issue },
  },
} as const;

const agentParams = { type: "object", required: ["agentId"], properties: { agentId: id } } as const;

export function fleetRoutes(service: FleetService): FastifyPluginAsync {
  return async (app) => {
    app.get(
      "/agents/config",
      {
        schema: {
          tags: ["fleet"],
          summary: "Every agent's configuration: desired, reported, whether they match",
          querystring: { type: "object", additionalProperties: false, properties: { siteId: id } },
          response: {
            ...errors,
            200: { type: "object", properties: { agents: { type: "array", items: agentView } } },
          },
        },
      },
      async (req) => ({ agents: await service.list((req.query as { siteId?: string }).siteId) }),
    );

    app.get(
      "/agents/:agentId/config",
      {
        schema: {
          tags: ["fleet"],
          summary: "One agent's configuration, with the desired document and the agent's issues",
          params: agentParams,
          querystring: noQuery,
          response: {
            ...errors,
            200: {
              type: "object",
              properties: {
                ...agentView.properties,
                document: { type: ["object", "null"], additionalProperties: true },
                issues: { type: "array", items: issue },
              },
            },
            404: errorBody,
          },
        },
      },
      async (req, reply) => {
        const { agentId } = req.params as { agentId: string };
        const detail = await service.get(agentId);
        if (!detail)
          return reply.code(404).send({
            statusCode: 404,
            error: "Not Found",
            code: "CT_API_NOT_FOUND",
            message: `agent ${agentId} not found`,
          });
        return detail;
      },
    );

    app.put(
      "/agents/:agentId/config",
      {
        schema: {
          tags: ["fleet"],
          summary: "Send an agent a desired configuration (retained, versioned)",
          description:
            "The agent validates it with the same schema, applies it on trial and rolls back by itself if it cannot reach the broker or its probes within graceMs. Secrets are never part of a configuration: mqtt.password is refused; name files on the box (mqtt.passwordFile, mqtt.tls.*File).",
          params: agentParams,
          querystring: noQuery,
          body: {
            type: "object",
            required: ["config"],
            additionalProperties: false,
            properties: {
              config: {
                type: "object",
                additionalProperties: true,
                description: "the agent's configuration document",
              },
              issuedBy: { type: "string", minLength: 1, maxLength: 128 },
              graceMs: { type: "integer", minimum: 1000, maximum: 3_600_000 },
            },
          },
          response: {
            ...errors,
            202: {
              type: "object",
              properties: {
                agentId: id,
                version: { type: "integer" },
                documentHash: hash,
                topic: { type: "string" },
              },
            },
            400: errorBody,
          },
        },
      },
      async (req, reply) => {
        const { agentId } = req.params as { agentId: string };
        const body = req.body as { config: unknown; issuedBy?: string; graceMs?: number };
        const by = body.issuedBy ?? (req as { tokenName?: string }).tokenName;
        try {
          const sent = await service.desire(agentId, {
            config: body.config,
            ...(by === undefined ? {} : { issuedBy: by }),
            ...(body.graceMs === undefined ? {} : { graceMs: body.graceMs }),
          });
          return reply.code(202).send(sent);
        } catch (err) {
          if (isColdtraceError(err, "CT_WIRE_INVALID"))
            return reply.code(400).send({
              statusCode: 400,
              error: "Bad Request",
              code: err.code,
              message: err.message,
              issues: (err.context.issues as unknown[] | undefined) ?? [],
            });
          throw err;
        }
      },
    );
  };
}
