/**
 * `coldtrace-erp-inbound`: the ERP's documents and files in, the gateway's movements out.
 *
 *   POST /erp/documents             one document (JSON, ../erp/documents.ts)
 *   POST /erp/files                 an ERP export: CSV (UTF-8, GB18030/GBK) or .xlsx, raw body
 *   GET  /erp/rejected              documents and files kept because they could not be recorded
 *   POST /erp/rejected/:id/retry    check and send one again (after the cause was fixed)
 *
 *   201 recorded · 400/422 refused, with every field at fault, and kept · 202 queued (the gateway
 *   is away; delivered when it is back) · 401 wrong token
 *
 * Documents become contract movements sent to POST /api/v1/lots/movements (idempotent by
 * movementId); a unit the gateway does not know is refused by name (a movement into it would
 * leave its lots untracked). Files are handed as they are to the gateway's import route
 * (POST /api/v1/lots/movements/import), which reads every encoding and format and answers
 * with its row/column report. Nothing is dropped: what cannot be recorded now is kept, durably.
 */
import { createHash } from "node:crypto";
import type { Movement } from "@coldtrace/protocol";
import { checkDocument, type DocumentIssue, unitsOf } from "../erp/documents.ts";
import { GatewayClient as Client, GatewayUnavailable } from "../gateway-client.ts";
import { backoffMs, FlowsStore } from "../store.ts";
import { gatewayFor } from "./gateway-node.ts";
import {
  type Node,
  type NodeAPI,
  type NodeDef,
  type NodeMessage,
  numberProp,
  optional,
  storePath,
} from "./red.ts";
import { startWorker } from "./worker.ts";

/** The worker leaves an item alone this long while the request that brought it delivers it. */
const INLINE_MS = 60_000;

type Inbound =
  | { kind: "document"; raw: unknown; movements?: Movement[] }
  | { kind: "file"; contentType: string; base64: string; name?: string };

type Outcome =
  | { status: "recorded"; detail: unknown }
  | { status: "refused"; code: number; message: string; issues: DocumentIssue[] | unknown }
  | { status: "queued"; message: string };

export default function register(RED: NodeAPI): void {
  RED.nodes.registerType("coldtrace-erp-inbound", function (this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    const now = () => Date.now();
    const gateway = gatewayFor(RED, this, def);
    const token = optional(def, "token");
    const timeZone = optional(def, "timeZone") ?? "Asia/Shanghai";
    const retryBaseMs = numberProp(def, "retryBaseMs", 5000, 1);
    const store = FlowsStore.open(storePath(RED, def.store));
    const queue = store.queue<Inbound>("erp-inbound");
    const knownUnits = new Map<string, string>(); // unitId → siteId, as the gateway answered

    /** Check units against the gateway: every unknown unit or wrong store is an issue. */
    const checkUnits = async (
      storeId: string,
      units: Array<{ unitId: string; path: string }>,
    ): Promise<DocumentIssue[]> => {
      const issues: DocumentIssue[] = [];
      for (const u of units) {
        let siteId = knownUnits.get(u.unitId);
        if (siteId === undefined) {
          const a = await gateway!.request<{ siteId?: string }>(
            "GET",
            `/api/v1/units/${encodeURIComponent(u.unitId)}`,
          );
          if (a.status === 404) {
            issues.push({
              path: u.path,
              message: `unknown unit ${JSON.stringify(u.unitId)}: no agent has announced it to the gateway`,
            });
            continue;
          }
          if (a.status !== 200) throw new Error(`gateway: GET unit ${u.unitId} answered ${a.status}`);
          siteId = a.body.siteId ?? "";
          knownUnits.set(u.unitId, siteId);
        }
        if (siteId !== storeId && !u.path.endsWith("transitBoxId")) {
          issues.push({
            path: u.path,
            message: `unit ${u.unitId} belongs to ${siteId}, not to store ${storeId}`,
          });
        }
      }
      return issues;
    };

    /** Try to record one inbound item now. Throws GatewayUnavailable when the gateway is away. */
    const deliver = async (item: Inbound): Promise<Outcome> => {
      if (!gateway) throw new GatewayUnavailable("no gateway configured");
      if (item.kind === "file") {
        const q = `?timeZone=${encodeURIComponent(timeZone)}`;
        const a = await gateway.request("POST", `/api/v1/lots/movements/import${q}`, undefined, {
          raw: Buffer.from(item.base64, "base64"),
          contentType: item.contentType,
        });
        if (a.status === 200) return { status: "recorded", detail: a.body };
        const report = a.body as { errors?: unknown };
        return { status: "refused", code: a.status, message: Client.reason(a), issues: report?.errors ?? [] };
      }
      const checked = checkDocument(item.raw, timeZone);
      if (!checked.ok)
        return { status: "refused", code: 400, message: describe(checked.issues), issues: checked.issues };
      const unitIssues = await checkUnits(checked.document.storeId, unitsOf(checked.document));
      if (unitIssues.length > 0)
        return { status: "refused", code: 422, message: describe(unitIssues), issues: unitIssues };
      let recorded = 0;
      let duplicates = 0;
      for (const m of checked.movements) {
        const a = await gateway.request("POST", "/api/v1/lots/movements", m);
        if (a.status === 201) recorded++;
        else if (a.status === 200) duplicates++;
        else
          return {
            status: "refused",
            code: 422,
            message: `${m.movementId}: ${Client.reason(a)}`,
            issues: [],
          };
      }
      return {
        status: "recorded",
        detail: {
          documentId: checked.document.documentId,
          movements: checked.movements.length,
          recorded,
          duplicates,
        },
      };
    };

    const settle = async (id: string, item: Inbound): Promise<Outcome> => {
      try {
        const o = await deliver(item);
        if (o.status === "recorded") queue.done(id, now());
        else queue.reject(id, o.message, now());
        return o;
      } catch (err) {
        if (!(err instanceof GatewayUnavailable)) throw err;
        const cur = queue.get(id);
        const attempt = (cur?.attempts ?? 0) + 1;
        queue.retry(id, err.message, now() + backoffMs(attempt, retryBaseMs, 10 * 60_000), now());
        return { status: "queued", message: err.message };
      }
    };

    const work = async () => {
      for (const item of queue.due(now())) await settle(item.id, item.body);
      const rejected = queue.list("rejected").length;
      const waiting = queue.list("pending").length;
      this.status({
        fill: rejected > 0 ? "yellow" : "green",
        shape: "dot",
        text: `${waiting} waiting · ${rejected} kept`,
      });
    };
    const worker = startWorker(work, numberProp(def, "pollMs", 1000, 10), (err) =>
      this.error(`ERP inbound: ${(err as Error).message}`),
    );

    const reply = (msg: NodeMessage, statusCode: number, payload: unknown) =>
      this.send({
        ...msg,
        statusCode,
        headers: { "content-type": "application/json; charset=utf-8" },
        payload,
      });

    const answer = (msg: NodeMessage, id: string, o: Outcome) => {
      if (o.status === "recorded")
        return reply(msg, 201, { id, status: "recorded", ...(o.detail as object) });
      if (o.status === "queued")
        return reply(msg, 202, {
          id,
          status: "queued",
          message: "the gateway is not reachable; kept and sent when it is back",
        });
      return reply(msg, o.code, {
        id,
        status: "rejected",
        code: "CT_ERP_INVALID",
        message: o.message,
        issues: o.issues,
        kept: true,
      });
    };

    this.on("input", async (msg, _send, done) => {
      try {
        const req = msg.req as NodeMessage["req"] & { method?: string; path?: string };
        if (!token || req?.headers.authorization !== `Bearer ${token}`) {
          reply(msg, 401, { error: "missing or wrong bearer token" });
          return done();
        }
        const path = req?.path ?? "";
        if (/\/erp\/rejected$/.test(path)) {
          reply(
            msg,
            200,
            [...queue.list("rejected"), ...queue.list("pending")].map((r) => ({
              id: r.id,
              status: r.status === "rejected" ? "rejected" : "waiting for the gateway",
              kind: r.body.kind,
              reason: r.lastError,
              attempts: r.attempts,
              since: new Date(r.createdAt).toISOString(),
              ...(r.body.kind === "document"
                ? { document: r.body.raw }
                : { contentType: r.body.contentType, bytes: Buffer.from(r.body.base64, "base64").length }),
            })),
          );
          return done();
        }
        if (/\/erp\/rejected\/[^/]+\/retry$/.test(path)) {
          const id = req?.params?.id ?? "";
          const cur = queue.get(id);
          if (!cur || cur.status === "done") {
            reply(msg, 404, { error: `nothing kept under ${JSON.stringify(id)}` });
            return done();
          }
          queue.put(id, cur.body, now(), id, now() + INLINE_MS);
          answer(msg, id, await settle(id, cur.body));
          return done();
        }
        let item: Inbound;
        let id: string;
        if (/\/erp\/files$/.test(path)) {
          const body = msg.payload;
          const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : "");
          if (bytes.length === 0) {
            reply(msg, 400, {
              code: "CT_ERP_INVALID",
              message: "body: expected a CSV or .xlsx file",
              issues: [{ path: "body", message: "empty" }],
            });
            return done();
          }
          const contentType = req?.headers["content-type"] ?? "application/octet-stream";
          id = `file-${createHash("sha256").update(bytes).digest("hex").slice(0, 24)}`;
          item = { kind: "file", contentType, base64: bytes.toString("base64") };
        } else {
          const raw = msg.payload;
          const documentId = (raw as { documentId?: unknown } | null)?.documentId;
          id =
            typeof documentId === "string" && /^[A-Za-z0-9._:-]{1,100}$/.test(documentId)
              ? `doc-${documentId}`
              : `doc-${createHash("sha256")
                  .update(JSON.stringify(raw ?? null))
                  .digest("hex")
                  .slice(0, 24)}`;
          item = { kind: "document", raw };
        }
        // Kept before anything else happens: a crash from here on loses nothing.
        queue.put(id, item, now(), id, now() + INLINE_MS);
        answer(msg, id, await settle(id, item));
        done();
      } catch (err) {
        reply(msg, 500, { error: "internal error" });
        done(err as Error);
      }
    });
    this.on("close", (_removed, done) => {
      void worker.stop().finally(() => {
        store.close();
        done();
      });
    });
  });
}

function describe(issues: DocumentIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
}
