/**
 * Topic access rules per role, the same rules the Mosquitto ACL in
 * docs/integrator/mosquitto.md expresses. Pure functions, so they are tested without a broker.
 *
 * Subscriptions are allowed when the requested filter is *contained* in an allowed filter:
 * every topic the requested filter can match is also matched by an allowed one
 * (MQTT 3.1.1 §4.7.1: `+` one level, `#` the rest).
 */
import { GATEWAY_SEGMENT, parseTopic, TOPIC_ROOT, type Topic, topicRules } from "@coldtrace/protocol";
import type { Identity } from "./credentials.ts";

/** True when every topic matched by `filter` is matched by `allowed`. */
export function filterWithin(filter: string, allowed: string): boolean {
  const f = filter.split("/");
  const a = allowed.split("/");
  for (let i = 0; i < a.length; i++) {
    const al = a[i];
    const fl = f[i];
    if (al === "#") return true;
    if (fl === undefined) return false;
    if (fl === "#") return false;
    if (al === "+") continue;
    if (al !== fl) return false;
  }
  return f.length === a.length;
}

function sites(identity: Identity): string[] {
  return identity.siteIds.includes("*") ? ["+"] : [...identity.siteIds];
}

/** The filters an identity may subscribe to. */
export function allowedSubscriptions(identity: Identity): string[] {
  const gatewayState = `${TOPIC_ROOT}/${GATEWAY_SEGMENT}/+/state`;
  switch (identity.role) {
    case "gateway":
      return ["#"];
    case "agent":
      return [
        gatewayState,
        ...sites(identity).map((s) => `${TOPIC_ROOT}/${s}/agent/${identity.agentId ?? identity.username}/#`),
      ];
    case "planner":
      return [
        gatewayState,
        ...sites(identity).flatMap((s) => [
          `${TOPIC_ROOT}/${s}/eligibility/+`,
          `${TOPIC_ROOT}/${s}/events/lot/+`,
        ]),
      ];
    case "erp":
      return [gatewayState];
    case "monitor":
      // Alarm escalation flows, dashboards, end-to-end checks: read-only.
      return [
        gatewayState,
        ...sites(identity).flatMap((s) => [
          `${TOPIC_ROOT}/${s}/events/#`,
          `${TOPIC_ROOT}/${s}/eligibility/+`,
          `${TOPIC_ROOT}/${s}/agent/+/state`,
        ]),
      ];
  }
}

export function maySubscribe(identity: Identity, filter: string): boolean {
  return allowedSubscriptions(identity).some((a) => filterWithin(filter, a));
}

function siteOf(t: Topic): string | undefined {
  return "siteId" in t ? t.siteId : undefined;
}

/**
 * Whether an identity may publish on a topic. Returns the parsed topic when allowed (the
 * broker uses it to strip `retain` from topics that are never retained), undefined otherwise.
 */
export function mayPublish(identity: Identity, topic: string): { allowed: boolean; topic?: Topic } {
  let t: Topic;
  try {
    t = parseTopic(topic);
  } catch {
    // Only the gateway itself may use topics outside the contract tree ($SYS is aedes' own).
    return { allowed: identity.role === "gateway" };
  }
  const site = siteOf(t);
  const inSites = site !== undefined && (identity.siteIds.includes("*") || identity.siteIds.includes(site));
  switch (identity.role) {
    case "gateway":
      return { allowed: true, topic: t };
    case "agent":
      return {
        allowed:
          topicRules[t.kind].publisher === "agent" &&
          inSites &&
          "agentId" in t &&
          t.agentId === (identity.agentId ?? identity.username),
        topic: t,
      };
    case "erp":
      return { allowed: t.kind === "movement" && inSites, topic: t };
    case "planner":
    case "monitor":
      return { allowed: false, topic: t };
  }
}
