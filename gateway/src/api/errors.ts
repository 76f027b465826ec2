/**
 * One error shape for the whole REST API, core routes and modules' routes alike:
 *
 *   { statusCode, code: "CT_*", error: "Bad Request", message, issues: [{ path, message }] }
 *
 * The status comes from the error registry (protocol/src/errors.ts `errorHttpStatus`), the code
 * from the error: a ColdtraceError keeps its own; a request that failed its route's schema is
 * CT_API_BAD_REQUEST naming every field (`query.from: expected integer`); fastify's own 4xx
 * (bad JSON, wrong content type, body too large) are CT_API_BAD_REQUEST with their status; an
 * unknown route is CT_API_NOT_FOUND; anything else is CT_API_INTERNAL, logged, and answered
 * without detail. docs/reference/errors.md documents every code.
 */
import { STATUS_CODES } from "node:http";
import { type ErrorCode, httpStatusOf, isColdtraceError } from "@coldtrace/protocol";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";

export interface ApiIssue {
  path: string;
  message: string;
}

export interface ApiErrorBody {
  statusCode: number;
  code: ErrorCode;
  error: string;
  message: string;
  issues: ApiIssue[];
}

/** The JSON Schema of the error body, for every route's 4xx/5xx responses. */
export const apiErrorSchema = {
  type: "object",
  description: "An error (docs/reference/errors.md lists every code)",
  required: ["statusCode", "code", "error", "message", "issues"],
  properties: {
    statusCode: { type: "integer" },
    code: { type: "string", pattern: "^CT_[A-Z_]+$" },
    error: { type: "string" },
    message: { type: "string" },
    issues: {
      type: "array",
      items: {
        type: "object",
        required: ["path", "message"],
        properties: { path: { type: "string" }, message: { type: "string" } },
      },
    },
  },
} as const;

/** A coded API error with a fixed message (no code suffix: the body carries the code). */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly issues: ApiIssue[];
  constructor(code: ErrorCode, message: string, issues: ApiIssue[] = []) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.statusCode = httpStatusOf(code);
    this.issues = issues;
  }
}

export const badRequest = (message: string, issues: ApiIssue[] = []) =>
  new ApiError("CT_API_BAD_REQUEST", message, issues);
export const notFound = (what: string) => new ApiError("CT_API_NOT_FOUND", `${what} not found`);

type AjvError = {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
};

/** ajv's errors as issues: `querystring` → `query`, `/from` → `.from`, and what was expected. */
export function validationIssues(errors: readonly AjvError[], dataVar: string): ApiIssue[] {
  const root = dataVar === "querystring" ? "query" : dataVar;
  return errors.map((e) => {
    const path = root + e.instancePath.replaceAll("/", ".");
    if (e.keyword === "required")
      return { path: `${path}.${String(e.params.missingProperty)}`, message: "required" };
    if (e.keyword === "additionalProperties")
      return { path: `${path}.${String(e.params.additionalProperty)}`, message: "unknown field" };
    if (e.keyword === "type") return { path, message: `expected ${String(e.params.type)}` };
    return { path, message: e.message ?? e.keyword };
  });
}

/** fastify's `schemaErrorFormatter`: one CT_API_BAD_REQUEST naming every field. */
export function schemaError(errors: readonly AjvError[], dataVar: string): ApiError {
  const issues = validationIssues(errors, dataVar);
  return badRequest(issues.map((i) => `${i.path}: ${i.message}`).join("; "), issues);
}

/** The error body and status for any error a route threw. */
export function errorBody(err: unknown): ApiErrorBody {
  let statusCode: number;
  let code: ErrorCode;
  let message: string;
  let issues: ApiIssue[] = [];
  if (err instanceof ApiError) {
    ({ statusCode, code, message, issues } = err);
  } else if (isColdtraceError(err)) {
    code = err.code;
    statusCode = httpStatusOf(code);
    message = err.message;
    issues = (err.context.issues as ApiIssue[] | undefined) ?? [];
  } else {
    const e = err as Partial<FastifyError>;
    statusCode = typeof e.statusCode === "number" && e.statusCode >= 400 ? e.statusCode : 500;
    code =
      statusCode < 500 ? (statusCode === 404 ? "CT_API_NOT_FOUND" : "CT_API_BAD_REQUEST") : "CT_API_INTERNAL";
    message = statusCode < 500 ? (e.message ?? "bad request") : "internal error";
  }
  if (statusCode >= 500) {
    message = "internal error";
    issues = [];
    if (code !== "CT_API_INTERNAL" && !isColdtraceError(err)) code = "CT_API_INTERNAL";
  }
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? "Error", message, issues };
}

/** The API's error handler (registered once, on the root instance: every plugin inherits it). */
export function handleError(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const body = errorBody(err);
  if (body.statusCode >= 500) req.log.error({ err, url: req.url }, "api request failed");
  return reply.status(body.statusCode).send(body);
}

/** Answer for a route that does not exist. */
export function handleNotFound(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply
    .status(404)
    .send(
      errorBody(new ApiError("CT_API_NOT_FOUND", `route ${req.method} ${req.url.split("?")[0]} not found`)),
    );
}

/** Answer for a request without a known token. */
export function unauthorized(reply: FastifyReply): FastifyReply {
  return reply
    .status(401)
    .header("www-authenticate", "Bearer")
    .send(errorBody(new ApiError("CT_API_UNAUTHORIZED", "missing or unknown bearer token")));
}
