/**
 * The topic tree of contract v1. Every topic is built and parsed here and nowhere else.
 *
 *   ct/v1/{site}/agent/{agent}/birth              agent → all     retained
 *   ct/v1/{site}/agent/{agent}/state              agent → all     retained, also the last will
 *   ct/v1/{site}/agent/{agent}/telemetry/{unit}   agent → gateway
 *   ct/v1/{site}/agent/{agent}/health             agent → gateway retained
 *   ct/v1/{site}/agent/{agent}/gap                agent → gateway
 *   ct/v1/{site}/agent/{agent}/config/desired     gateway → agent retained, remote configuration
 *   ct/v1/{site}/agent/{agent}/config/reported    agent → all     retained, what the agent runs
 *   ct/v1/{site}/movements                        ERP   → gateway
 *   ct/v1/{site}/events/alarm/{unit}              gateway → all
 *   ct/v1/{site}/events/excursion/{unit}          gateway → all
 *   ct/v1/{site}/events/lot/{lot}                 gateway → all
 *   ct/v1/{site}/eligibility/{lot}                gateway → planner retained
 *   ct/v1/_gateway/{gateway}/state                gateway → agents retained, also the last will
 *
 * Site, agent, unit and gateway ids are plain segments (see `segmentId`); lot numbers are
 * percent-encoded because suppliers put `/` and spaces in them. `_gateway` can never be a site
 * id, since site ids start with a letter or digit.
 */
import { ColdtraceError } from "./errors.ts";
import { segmentId } from "./schemas/common.ts";

export const TOPIC_ROOT = "ct/v1";
export const GATEWAY_SEGMENT = "_gateway";

export type QoS = 0 | 1;

export type TopicKind =
  | "telemetry"
  | "birth"
  | "agentState"
  | "probeHealth"
  | "gap"
  | "configDesired"
  | "configReported"
  | "movement"
  | "alarm"
  | "excursion"
  | "lot"
  | "eligibility"
  | "gatewayState";

export type Topic =
  | { kind: "telemetry"; siteId: string; agentId: string; unitId: string }
  | { kind: "birth" | "agentState" | "probeHealth" | "gap"; siteId: string; agentId: string }
  | { kind: "configDesired" | "configReported"; siteId: string; agentId: string }
  | { kind: "movement"; siteId: string }
  | { kind: "alarm" | "excursion"; siteId: string; unitId: string }
  | { kind: "lot" | "eligibility"; siteId: string; lotId: string }
  | { kind: "gatewayState"; gatewayId: string };

/** Delivery rules per topic kind. Readings are never retained; only small state topics are. */
export const topicRules: Record<
  TopicKind,
  { qos: QoS; retain: boolean; publisher: "agent" | "erp" | "gateway" }
> = {
  telemetry: { qos: 1, retain: false, publisher: "agent" },
  birth: { qos: 1, retain: true, publisher: "agent" },
  agentState: { qos: 1, retain: true, publisher: "agent" },
  probeHealth: { qos: 1, retain: true, publisher: "agent" },
  gap: { qos: 1, retain: false, publisher: "agent" },
  // The desired configuration lives in the agent's own subtree (so one ACL line covers what an
  // agent reads), but only the gateway may publish it.
  configDesired: { qos: 1, retain: true, publisher: "gateway" },
  configReported: { qos: 1, retain: true, publisher: "agent" },
  movement: { qos: 1, retain: false, publisher: "erp" },
  alarm: { qos: 1, retain: false, publisher: "gateway" },
  excursion: { qos: 1, retain: false, publisher: "gateway" },
  lot: { qos: 1, retain: false, publisher: "gateway" },
  eligibility: { qos: 1, retain: true, publisher: "gateway" },
  gatewayState: { qos: 1, retain: true, publisher: "gateway" },
};

const agentLeaf: Record<string, "birth" | "agentState" | "probeHealth" | "gap"> = {
  birth: "birth",
  state: "agentState",
  health: "probeHealth",
  gap: "gap",
};
const agentLeafName = Object.fromEntries(
  Object.entries(agentLeaf).map(([leaf, kind]) => [kind, leaf]),
) as Record<"birth" | "agentState" | "probeHealth" | "gap", string>;

function segment(name: string, value: string): string {
  const parsed = segmentId.safeParse(value);
  if (!parsed.success) {
    throw new ColdtraceError(
      "CT_TOPIC_SEGMENT",
      `${name} ${JSON.stringify(value)} ${parsed.error.issues[0]?.message}`,
      {
        name,
        value,
      },
    );
  }
  return value;
}

function encodeLot(lotId: string): string {
  if (lotId.length === 0)
    throw new ColdtraceError("CT_TOPIC_SEGMENT", "lotId must not be empty", { name: "lotId" });
  return encodeURIComponent(lotId);
}

/** Build the topic string for a topic value. Throws CT_TOPIC_SEGMENT when an id cannot be a segment. */
export function formatTopic(t: Topic): string {
  switch (t.kind) {
    case "telemetry":
      return `${TOPIC_ROOT}/${segment("siteId", t.siteId)}/agent/${segment("agentId", t.agentId)}/telemetry/${segment("unitId", t.unitId)}`;
    case "birth":
    case "agentState":
    case "probeHealth":
    case "gap":
      return `${TOPIC_ROOT}/${segment("siteId", t.siteId)}/agent/${segment("agentId", t.agentId)}/${agentLeafName[t.kind]}`;
    case "configDesired":
    case "configReported":
      return `${TOPIC_ROOT}/${segment("siteId", t.siteId)}/agent/${segment("agentId", t.agentId)}/config/${
        t.kind === "configDesired" ? "desired" : "reported"
      }`;
    case "movement":
      return `${TOPIC_ROOT}/${segment("siteId", t.siteId)}/movements`;
    case "alarm":
    case "excursion":
      return `${TOPIC_ROOT}/${segment("siteId", t.siteId)}/events/${t.kind}/${segment("unitId", t.unitId)}`;
    case "lot":
      return `${TOPIC_ROOT}/${segment("siteId", t.siteId)}/events/lot/${encodeLot(t.lotId)}`;
    case "eligibility":
      return `${TOPIC_ROOT}/${segment("siteId", t.siteId)}/eligibility/${encodeLot(t.lotId)}`;
    case "gatewayState":
      return `${TOPIC_ROOT}/${GATEWAY_SEGMENT}/${segment("gatewayId", t.gatewayId)}/state`;
  }
}

function invalid(topic: string, why: string): ColdtraceError {
  return new ColdtraceError("CT_TOPIC_INVALID", `${topic}: ${why}`, { topic });
}

/** Parse a topic of the contract tree. Throws CT_TOPIC_INVALID naming what is wrong. */
export function parseTopic(topic: string): Topic {
  const parts = topic.split("/");
  if (parts[0] !== "ct" || parts[1] !== "v1") throw invalid(topic, `not under ${TOPIC_ROOT}/`);
  const [, , third, fourth, fifth, sixth, seventh, ...rest] = parts;
  const id = (name: string, value: string | undefined): string => {
    if (value === undefined || !segmentId.safeParse(value).success) {
      throw invalid(topic, `${name} ${JSON.stringify(value ?? "")} is not a valid id`);
    }
    return value;
  };
  const lot = (value: string | undefined): string => {
    if (value === undefined || value === "") throw invalid(topic, "lot segment is empty");
    try {
      return decodeURIComponent(value);
    } catch {
      throw invalid(topic, `lot segment ${JSON.stringify(value)} is not valid percent-encoding`);
    }
  };
  const end = (n: number): void => {
    if (parts.length !== n) throw invalid(topic, `expected ${n} levels, found ${parts.length}`);
  };
  void rest;

  if (third === GATEWAY_SEGMENT) {
    end(5);
    if (fifth !== "state") throw invalid(topic, `unknown gateway topic "${fifth}"`);
    return { kind: "gatewayState", gatewayId: id("gatewayId", fourth) };
  }
  const siteId = id("siteId", third);
  switch (fourth) {
    case "agent": {
      const agentId = id("agentId", fifth);
      if (sixth === "telemetry") {
        end(7);
        return { kind: "telemetry", siteId, agentId, unitId: id("unitId", seventh) };
      }
      if (sixth === "config") {
        end(7);
        if (seventh === "desired") return { kind: "configDesired", siteId, agentId };
        if (seventh === "reported") return { kind: "configReported", siteId, agentId };
        throw invalid(topic, `unknown agent config topic "${seventh ?? ""}"`);
      }
      const kind = sixth === undefined ? undefined : agentLeaf[sixth];
      if (kind === undefined) throw invalid(topic, `unknown agent topic "${sixth ?? ""}"`);
      end(6);
      return { kind, siteId, agentId };
    }
    case "movements":
      end(4);
      return { kind: "movement", siteId };
    case "events":
      end(6);
      if (fifth === "alarm" || fifth === "excursion")
        return { kind: fifth, siteId, unitId: id("unitId", sixth) };
      if (fifth === "lot") return { kind: "lot", siteId, lotId: lot(sixth) };
      throw invalid(topic, `unknown event stream "${fifth ?? ""}"`);
    case "eligibility":
      end(5);
      return { kind: "eligibility", siteId, lotId: lot(fifth) };
    default:
      throw invalid(topic, `unknown topic family "${fourth ?? ""}"`);
  }
}

/** Subscription filters (MQTT wildcards) for consumers. Pass a site id to narrow to one site. */
export const topicFilters = {
  telemetry: (siteId = "+") => `${TOPIC_ROOT}/${siteId}/agent/+/telemetry/+`,
  agentAll: (siteId = "+") => `${TOPIC_ROOT}/${siteId}/agent/#`,
  /** What the agents run (retained): the fleet view. */
  configReported: (siteId = "+") => `${TOPIC_ROOT}/${siteId}/agent/+/config/reported`,
  movements: (siteId = "+") => `${TOPIC_ROOT}/${siteId}/movements`,
  events: (siteId = "+") => `${TOPIC_ROOT}/${siteId}/events/#`,
  eligibility: (siteId = "+") => `${TOPIC_ROOT}/${siteId}/eligibility/+`,
  gatewayState: () => `${TOPIC_ROOT}/${GATEWAY_SEGMENT}/+/state`,
} as const;
