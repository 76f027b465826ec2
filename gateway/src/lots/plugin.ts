/**
 * REST for the transfer planner and the ERP bridge (docs/integrator/planner.md), a fastify
 * plugin over a LotService. Every body and query is validated by zod; a 4xx answer carries the
 * CT_* code and a message naming each bad field, e.g.
 * `transfer: quantity: must be at least 1, got 0 (CT_LOT_INVALID)`.
 *
 *   GET  /lots/eligibility?siteId=&lotId=   eligibility states (by site, by lot, or both)
 *   POST /lots/movements                    one contract movement (idempotent by movementId)
 *   POST /lots/movements/import             ERP export (CSV in UTF-8 or GB18030/GBK, or .xlsx),
 *                                           ?timeZone= for zone-less times; all-or-nothing, error report
 *   POST /lots/release | /lots/reject       QA decision: siteId, lotId, by, reason
 *   POST /lots/transfer-check               allow/deny a proposed transfer, with reasons
 *   GET  /lots/occupancy?unitId=&at=        what is inside a unit at a moment
 *   GET  /lots/products, /lots/lots?sku=    master data: every product, every lot (of a SKU)
 *   PUT  /lots/products | /lots/lots        master data: add or replace one
 */
import { ColdtraceError, describeIssues, isColdtraceError } from "@coldtrace/protocol";
import type { FastifyPluginAsync } from "fastify";
import { z } from "zod";
import { readMovementsTable } from "./csv.ts";
import { decodeMovementsFile, importMediaTypes } from "./import-file.ts";
import type { LotService } from "./service.ts";

const statusFor: Record<string, number> = {
  CT_LOT_INVALID: 400,
  CT_WIRE_INVALID: 400,
  CT_IMPORT_INVALID: 422,
  CT_LOT_STATE: 409,
};

const occupancyQuery = z
  .object({
    unitId: z.string().min(1),
    at: z.coerce.number().int("must be epoch milliseconds").optional(),
  })
  .strict();

const lotsQuery = z.object({ sku: z.string().min(1).optional() }).strict();

/** A query string against its schema, or CT_LOT_INVALID naming every bad field. */
function checkQuery<T>(what: string, schema: z.ZodType<T>, query: unknown): T {
  const r = schema.safeParse(query);
  if (r.success) return r.data;
  const issues = describeIssues(r.error, query);
  throw new ColdtraceError(
    "CT_LOT_INVALID",
    `${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
    {
      issues,
    },
  );
}

const importQuery = z.object({ timeZone: z.string().min(1).max(64).optional() }).strict();

export function lotsPlugin(service: LotService): FastifyPluginAsync {
  return async (app) => {
    // Raw bytes: the charset (UTF-8, GB18030) or the spreadsheet format is decided by the import.
    app.addContentTypeParser(
      importMediaTypes,
      { parseAs: "buffer", bodyLimit: 64 * 1024 * 1024 },
      (_req, body, done) => done(null, body),
    );

    app.setErrorHandler((err, req, reply) => {
      if (isColdtraceError(err)) {
        const status = statusFor[err.code] ?? 500;
        if (status >= 500) req.log.error({ err }, "lots request failed");
        return reply
          .code(status)
          .send({ code: err.code, message: err.message, issues: err.context.issues ?? [] });
      }
      const e = err as { statusCode?: number; message?: string; code?: string };
      if (e.statusCode !== undefined && e.statusCode < 500) {
        return reply
          .code(e.statusCode)
          .send({ code: "CT_LOT_INVALID", message: e.message ?? "bad request", issues: [] });
      }
      req.log.error({ err }, "lots request failed");
      return reply.code(500).send({ code: "CT_STORE_IO", message: "internal error", issues: [] });
    });

    app.get("/lots/eligibility", async (req) => service.eligibility(req.query as never));

    app.post("/lots/movements", async (req, reply) => {
      const r = await service.recordMovement(req.body as never);
      return reply.code(r.duplicate ? 200 : 201).send(r);
    });

    app.post("/lots/movements/import", async (req, reply) => {
      if (!Buffer.isBuffer(req.body)) {
        throw new ColdtraceError("CT_IMPORT_INVALID", "body: expected a text/csv or .xlsx file", {
          issues: [{ path: "body", message: `expected one of ${importMediaTypes.join(", ")}` }],
        });
      }
      const q = checkQuery("import query", importQuery, req.query);
      const file = await decodeMovementsFile(req.body, req.headers["content-type"]);
      const report = await service.importMovements(
        readMovementsTable(file.table, q.timeZone === undefined ? {} : { timeZone: q.timeZone }),
      );
      return reply.code(report.ok ? 200 : 422).send(report);
    });

    app.post("/lots/release", async (req) => service.release(req.body as never));
    app.post("/lots/reject", async (req) => service.reject(req.body as never));
    app.post("/lots/transfer-check", async (req) => service.checkTransfer(req.body as never));

    app.get("/lots/occupancy", async (req) => {
      const q = checkQuery("occupancy", occupancyQuery, req.query);
      return service.occupancy(q.unitId, q.at ?? Date.now());
    });

    app.get("/lots/products", async () => service.listProducts());
    app.put("/lots/products", async (req) => service.upsertProduct(req.body as never));
    app.get("/lots/lots", async (req) => service.listLots(checkQuery("lots", lotsQuery, req.query)));
    app.put("/lots/lots", async (req) => service.upsertLot(req.body as never));
  };
}
