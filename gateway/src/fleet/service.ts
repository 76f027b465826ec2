/**
 * Fleet configuration, the gateway's side of remote configuration (docs/protocol.md "Remote
 * configuration"): a desired configuration per agent, sent through the transactional outbox
 * as a retained `config/desired` message, and each agent's `config/reported` answer, from
 * which the gateway tells whether the agent runs what it should.
 *
 *   PUT /agents/{id}/config ─▶ desire(): validate (the agent's own schema, no secrets, its id and
 *        site) ─▶ version = highest known + 1 ─▶ one transaction: desired row + sent row +
 *        outbox row (retained config/desired) ─▶ dispatcher ─▶ broker ─▶ agent
 *   agent ─ config/reported (retained) ─▶ onReport() ─▶ reported row
 *   GET /agents/config ─▶ per agent: desired, reported, status (in_sync, applying, rejected …)
 */
import {
  agentConfigSchema,
  ColdtraceError,
  type ConfigDesired,
  type ConfigReported,
  configDocumentHash,
  decodeMessage,
  describeIssues,
  formatTopic,
  validatePayload,
  type WireIssue,
} from "@coldtrace/protocol";
import type { Logger } from "pino";
import type { ExtensionContext } from "../extension/extension.ts";
import {
  type DesiredRow,
  getDesired,
  getReported,
  listDesired,
  listReported,
  type ReportedRow,
  saveDesired,
  saveReported,
} from "./store.ts";

/**
 * - in_sync: the agent confirmed the desired version (state applied, same version and hash).
 * - pending: sent, no answer for this version yet (agent offline, or still switching).
 * - applying: the agent runs it on trial.
 * - rejected / rolled_back: the agent refused it, or went back to its last good configuration.
 * - not_managed: the agent reports, the gateway never sent it a configuration.
 */
export type ConfigStatus = "in_sync" | "pending" | "applying" | "rejected" | "rolled_back" | "not_managed";

export interface AgentConfigView {
  agentId: string;
  siteId: string;
  status: ConfigStatus;
  inSync: boolean;
  desired: Omit<DesiredRow, "agentId" | "siteId" | "document"> | null;
  reported: (Omit<ConfigReported, "v" | "agentId" | "issues"> & { receivedAt: number }) | null;
}

export interface AgentConfigDetail extends AgentConfigView {
  /** The desired configuration document (no secrets: they are never part of one). */
  document: unknown;
  issues: ConfigReported["issues"];
}

export function configStatus(
  desired: DesiredRow | undefined,
  reported: ConfigReported | undefined,
): ConfigStatus {
  if (!desired) return "not_managed";
  if (!reported || reported.desiredVersion !== desired.version) return "pending";
  switch (reported.state) {
    case "applied":
      return reported.running.version === desired.version &&
        reported.running.documentHash === desired.documentHash
        ? "in_sync"
        : "pending";
    case "trial":
      return "applying";
    case "rejected":
      return "rejected";
    case "rolled_back":
      return "rolled_back";
  }
}

function view(agentId: string, d: DesiredRow | undefined, r: ReportedRow | undefined): AgentConfigView {
  const status = configStatus(d, r?.report);
  const { v: _v, agentId: _a, issues: _i, ...rest } = r?.report ?? ({} as ConfigReported);
  return {
    agentId,
    siteId: d?.siteId ?? r?.siteId ?? "",
    status,
    inSync: status === "in_sync",
    desired: d
      ? {
          version: d.version,
          documentHash: d.documentHash,
          issuedAt: d.issuedAt,
          issuedBy: d.issuedBy,
          graceMs: d.graceMs,
        }
      : null,
    reported: r
      ? { ...(rest as Omit<ConfigReported, "v" | "agentId" | "issues">), receivedAt: r.receivedAt }
      : null,
  };
}

export interface DesireRequest {
  config: unknown;
  issuedBy?: string;
  graceMs?: number;
}

export interface FleetService {
  desire(
    agentId: string,
    req: DesireRequest,
  ): Promise<{ agentId: string; version: number; documentHash: string; topic: string }>;
  list(siteId?: string): Promise<AgentConfigView[]>;
  get(agentId: string): Promise<AgentConfigDetail | undefined>;
  onReport(topic: string, payload: Buffer): Promise<void>;
  /** Agents per status, for /metrics. */
  counts(): Record<ConfigStatus, number>;
  load(): Promise<void>;
}

function invalid(issues: WireIssue[]): ColdtraceError {
  return new ColdtraceError(
    "CT_WIRE_INVALID",
    `desired configuration refused: ${issues.map((i) => `${i.path || "(top level)"}: ${i.message}`).join("; ")}`,
    { issues },
  );
}

export function createFleetService(ctx: ExtensionContext, log: Logger): FleetService {
  const statuses = new Map<string, ConfigStatus>();

  async function refresh(agentId: string) {
    const [d, r] = await Promise.all([getDesired(ctx.sql, agentId), getReported(ctx.sql, agentId)]);
    statuses.set(agentId, configStatus(d, r?.report));
  }

  return {
    async load() {
      const [ds, rs] = await Promise.all([listDesired(ctx.sql), listReported(ctx.sql)]);
      const reports = new Map(rs.map((r) => [r.agentId, r.report]));
      for (const d of ds) statuses.set(d.agentId, configStatus(d, reports.get(d.agentId)));
      for (const r of rs) if (!statuses.has(r.agentId)) statuses.set(r.agentId, "not_managed");
    },

    async desire(agentId, req) {
      const parsed = agentConfigSchema.safeParse(req.config);
      if (!parsed.success)
        throw invalid(
          describeIssues(parsed.error, req.config).map((i) => ({
            ...i,
            path: `config${i.path ? `.${i.path}` : ""}`,
          })),
        );
      const config = parsed.data;
      const issues: WireIssue[] = [];
      if (config.agent.id !== agentId)
        issues.push({
          path: "config.agent.id",
          message: `must be the agent it is for (${agentId}), got "${config.agent.id}"`,
        });
      const known = (await ctx.records.listAgents()).find((a) => a.agentId === agentId);
      if (known && known.siteId !== config.agent.siteId)
        issues.push({
          path: "config.agent.siteId",
          message: `the agent runs at site ${known.siteId}; only its own file can move it, got "${config.agent.siteId}"`,
        });
      if (issues.length > 0) throw invalid(issues);
      const siteId = config.agent.siteId;
      const documentHash = await configDocumentHash(config);
      const topic = formatTopic({ kind: "configDesired", siteId, agentId });
      const issuedAt = ctx.clock.now();
      const version = await ctx.sql.transaction(async (tx) => {
        const before = await getDesired(tx, agentId);
        const report = (await getReported(tx, agentId))?.report;
        // Above anything the agent has seen too: after a restore of this database the agent
        // would ignore a version it already handled.
        const next =
          Math.max(before?.version ?? 0, report?.desiredVersion ?? 0, report?.running.version ?? 0) + 1;
        const payload: ConfigDesired = validatePayload(
          "configDesired",
          {
            v: 1,
            agentId,
            version: next,
            documentHash,
            config,
            issuedAt,
            ...(req.issuedBy === undefined ? {} : { issuedBy: req.issuedBy }),
            ...(req.graceMs === undefined ? {} : { graceMs: req.graceMs }),
          },
          "desired configuration",
        );
        await saveDesired(tx, {
          agentId,
          siteId,
          version: next,
          documentHash,
          document: config,
          issuedAt,
          issuedBy: req.issuedBy ?? null,
          graceMs: req.graceMs ?? null,
        });
        await ctx.outbox.enqueue(tx, "configDesired", topic, payload, `config-${agentId}-v${next}`);
        return next;
      });
      ctx.outbox.notify();
      statuses.set(agentId, "pending");
      log.info(
        { agentId, siteId, version, documentHash, issuedBy: req.issuedBy },
        "desired configuration sent",
      );
      return { agentId, version, documentHash, topic };
    },

    async list(siteId) {
      const [ds, rs, agents] = await Promise.all([
        listDesired(ctx.sql),
        listReported(ctx.sql),
        ctx.records.listAgents(),
      ]);
      const byD = new Map(ds.map((d) => [d.agentId, d]));
      const byR = new Map(rs.map((r) => [r.agentId, r]));
      const ids = new Set([...agents.map((a) => a.agentId), ...byD.keys(), ...byR.keys()]);
      const siteOf = new Map(agents.map((a) => [a.agentId, a.siteId]));
      return [...ids]
        .sort()
        .map((id) => {
          const v = view(id, byD.get(id), byR.get(id));
          return { ...v, siteId: v.siteId || siteOf.get(id) || "" };
        })
        .filter((v) => siteId === undefined || v.siteId === siteId);
    },

    async get(agentId) {
      const [d, r] = await Promise.all([getDesired(ctx.sql, agentId), getReported(ctx.sql, agentId)]);
      const agent = (await ctx.records.listAgents()).find((a) => a.agentId === agentId);
      if (!d && !r && !agent) return undefined;
      const v = view(agentId, d, r);
      return {
        ...v,
        siteId: v.siteId || agent?.siteId || "",
        document: d?.document ?? null,
        issues: r?.report.issues ?? [],
      };
    },

    async onReport(topic, payload) {
      if (payload.length === 0) return;
      let report: ConfigReported;
      let siteId: string;
      try {
        const m = decodeMessage(topic, payload);
        if (m.kind !== "configReported") return;
        report = m.payload;
        siteId = m.topic.siteId;
      } catch (err) {
        log.warn({ topic, err }, "configuration report rejected");
        return;
      }
      await saveReported(ctx.sql, { agentId: report.agentId, siteId, report, receivedAt: ctx.clock.now() });
      const before = statuses.get(report.agentId);
      await refresh(report.agentId);
      const now = statuses.get(report.agentId);
      if (now !== before) {
        const fields = {
          agentId: report.agentId,
          siteId,
          status: now,
          state: report.state,
          desiredVersion: report.desiredVersion,
          running: report.running.version,
          reason: report.reason?.message,
        };
        if (now === "rejected" || now === "rolled_back")
          log.warn(fields, "agent did not take its desired configuration");
        else log.info(fields, "agent configuration status");
      }
    },

    counts() {
      const out: Record<ConfigStatus, number> = {
        in_sync: 0,
        pending: 0,
        applying: 0,
        rejected: 0,
        rolled_back: 0,
        not_managed: 0,
      };
      for (const s of statuses.values()) out[s]++;
      return out;
    },
  };
}
