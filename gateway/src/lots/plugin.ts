/**
 * REST for the transfer planner and the ERP bridge (docs/integrator/planner.md), a fastify
 * plugin over a LotService, schema-first from the lots' zod models (api/schema.ts): every
 * route is in /openapi.json with its request and response schemas, and a 4xx answer is the
 * API's one error body naming each bad field, e.g.
 * `transfer: quantity: must be at least 1, got 0 (CT_LOT_INVALID)`.
 *
 *   GET  /lots/eligibility?siteId=&lotId=   eligibility states (by site, by lot, or both)
 *   POST /lots/movements                    one contract movement (idempotent by movementId)
 *   POST /lots/movements/import             ERP export (CSV in UTF-8 or GB18030/GBK, or .xlsx),
 *                                           ?timeZone= for zone-less times; all-or-nothing, error report
 *   POST /lots/release | /lots/reject       QA decision: siteId, lotId, by, reason
 *   POST /lots/transfer-check               allow/deny a proposed transfer, with reasons
 *   GET  /lots/occupancy?unitId=&at=        what is inside a unit at a moment
 *   GET  /lots/holds?lotId=&siteId=         holds with their cause, status and decision
 *   GET  /lots/exposures?lotId=             the lot's exposure per cause and unit
 *   PUT  /lots/products | /lots/lots        master data; GET lists them (paged), GET …/{id} one
 */
import { ColdtraceError, eligibility, movement, parseOr } from "@coldtrace/protocol";
import type { FastifyPluginAsync } from "fastify";
import { z } from "zod";
import { handleError, notFound } from "../api/errors.ts";
import { routeSchema, zodRoutes } from "../api/schema.ts";
import { readMovementsTable } from "./csv.ts";
import { decodeMovementsFile, importMediaTypes } from "./import-file.ts";
import {
  decision,
  eligibilityQuery,
  exposureQuery,
  exposureRecord,
  holdQuery,
  holdRecord,
  importReport,
  lot,
  lotListQuery,
  lotParams,
  lotRecord,
  movementResult,
  occupancyQuery,
  occupantRecord,
  pageQuery,
  product,
  productRecord,
  rejectDecision,
  skuParams,
  transferCheck,
  transferVerdictRecord,
} from "./model.ts";
import type { LotService } from "./service.ts";

const tags = ["lots"];
const q = <S extends z.ZodType>(schema: S, where: string, input: unknown): z.output<S> =>
  parseOr("CT_LOT_INVALID", schema, where, input);
const noQuery = z.object({}).strict();
const importQuery = z.object({ timeZone: z.string().min(1).max(64).optional() }).strict();

export function lotsPlugin(service: LotService): FastifyPluginAsync {
  return async (app) => {
    zodRoutes(app);
    // The API's one error handler (the host's root has it too): the same answers standalone.
    app.setErrorHandler(handleError);
    // Raw bytes: the charset (UTF-8, GB18030) or the spreadsheet format is decided by the import.
    app.addContentTypeParser(
      importMediaTypes,
      { parseAs: "buffer", bodyLimit: 64 * 1024 * 1024 },
      (_req, body, done) => done(null, body),
    );

    app.get(
      "/lots/eligibility",
      {
        schema: routeSchema({
          tags,
          summary: "Eligibility of lots by site, by lot, or both",
          querystring: eligibilityQuery,
          response: { 200: z.array(eligibility) },
        }),
      },
      async (req) => service.eligibility(req.query as never),
    );

    app.post(
      "/lots/movements",
      {
        schema: routeSchema({
          tags,
          summary: "Record one movement (idempotent by movementId; 201 new, 200 duplicate)",
          querystring: noQuery,
          body: movement,
          response: { 200: movementResult, 201: movementResult },
        }),
      },
      async (req, reply) => {
        const r = await service.recordMovement(req.body as never);
        return reply.code(r.duplicate ? 200 : 201).send(r);
      },
    );

    app.post(
      "/lots/movements/import",
      {
        schema: routeSchema({
          tags,
          summary: "Import an ERP movements export (CSV in UTF-8 or GB18030/GBK, or .xlsx), all or nothing",
          consumes: importMediaTypes,
          querystring: importQuery,
          body: {
            type: "string",
            format: "binary",
            description: "the file, docs/integrator/movements-csv.md",
          },
          response: { 200: importReport, 422: importReport },
        }),
      },
      async (req, reply) => {
        if (!Buffer.isBuffer(req.body)) {
          throw new ColdtraceError("CT_IMPORT_INVALID", "body: expected a text/csv or .xlsx file", {
            issues: [{ path: "body", message: `expected one of ${importMediaTypes.join(", ")}` }],
          });
        }
        const o = q(importQuery, "import query", req.query);
        const file = await decodeMovementsFile(req.body, req.headers["content-type"]);
        const report = await service.importMovements(
          readMovementsTable(file.table, o.timeZone === undefined ? {} : { timeZone: o.timeZone }),
        );
        return reply.code(report.ok ? 200 : 422).send(report);
      },
    );

    app.post(
      "/lots/release",
      {
        schema: routeSchema({
          tags,
          summary: "QA release",
          querystring: noQuery,
          body: decision,
          response: { 200: eligibility },
        }),
      },
      async (req) => service.release(req.body as never),
    );
    app.post(
      "/lots/reject",
      {
        schema: routeSchema({
          tags,
          summary: "QA reject (or return to supplier)",
          querystring: noQuery,
          body: rejectDecision,
          response: { 200: eligibility },
        }),
      },
      async (req) => service.reject(req.body as never),
    );
    app.post(
      "/lots/transfer-check",
      {
        schema: routeSchema({
          tags,
          summary: "Allow or deny a proposed transfer, with reasons",
          querystring: noQuery,
          body: transferCheck,
          response: { 200: transferVerdictRecord },
        }),
      },
      async (req) => service.checkTransfer(req.body as never),
    );

    app.get(
      "/lots/occupancy",
      {
        schema: routeSchema({
          tags,
          summary: "What is inside a unit at a moment (default now)",
          querystring: occupancyQuery,
          response: { 200: z.array(occupantRecord) },
        }),
      },
      async (req) => {
        const o = q(occupancyQuery, "occupancy", req.query);
        return service.occupancy(o.unitId, o.at ?? Date.now());
      },
    );
    app.get(
      "/lots/holds",
      {
        schema: routeSchema({
          tags,
          summary: "Holds of a lot and/or a site: cause, unit, status, decision",
          querystring: holdQuery,
          response: { 200: z.array(holdRecord) },
        }),
      },
      async (req) => service.holds(q(holdQuery, "holds", req.query)),
    );
    app.get(
      "/lots/exposures",
      {
        schema: routeSchema({
          tags,
          summary: "A lot's exposure per cause and unit",
          querystring: exposureQuery,
          response: { 200: z.array(exposureRecord) },
        }),
      },
      async (req) => service.exposures(q(exposureQuery, "exposures", req.query).lotId),
    );

    // Master data: PUT one, GET a page of them, GET one by its key.
    const masterData = <
      R extends z.ZodType,
      B extends z.ZodType,
      L extends z.ZodType,
      P extends z.ZodType,
    >(m: {
      path: string;
      what: string;
      record: R;
      body: B;
      list: L;
      params: P;
      put(body: unknown): Promise<z.output<R>>;
      page(q: z.output<L>): Promise<Array<z.output<R>>>;
      one(params: z.output<P>): Promise<z.output<R> | undefined>;
    }) => {
      app.put(
        m.path,
        {
          schema: routeSchema({
            tags,
            summary: `Create or update a ${m.what}`,
            querystring: noQuery,
            body: m.body,
            response: { 200: m.record },
          }),
        },
        async (req) => m.put(req.body),
      );
      app.get(
        m.path,
        {
          schema: routeSchema({
            tags,
            summary: `${m.what}s in key order (paged: after, limit)`,
            querystring: m.list,
            response: { 200: z.array(m.record) },
          }),
        },
        async (req) => m.page(q(m.list, `${m.what}s`, req.query)),
      );
      const key = Object.keys((m.params as unknown as z.ZodObject).shape)[0] as string;
      app.get(
        `${m.path}/:${key}`,
        {
          schema: routeSchema({
            tags,
            summary: `One ${m.what} (key URL-encoded)`,
            querystring: noQuery,
            params: m.params,
            response: { 200: m.record },
          }),
        },
        async (req) => {
          const found = await m.one(q(m.params, m.what, req.params));
          if (!found) throw notFound(m.what);
          return found;
        },
      );
    };
    masterData({
      path: "/lots/products",
      what: "product",
      record: productRecord,
      body: product,
      list: pageQuery,
      params: skuParams,
      put: (body) => service.upsertProduct(body as never),
      page: (p) => service.listProducts(p),
      one: (p) => service.getProduct(p.sku),
    });
    masterData({
      path: "/lots/lots",
      what: "lot",
      record: lotRecord,
      body: lot,
      list: lotListQuery,
      params: lotParams,
      put: (body) => service.upsertLot(body as never),
      page: (p) => service.listLots(p),
      one: (p) => service.getLot(p.lotId),
    });
  };
}
