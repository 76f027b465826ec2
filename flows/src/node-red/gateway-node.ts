/**
 * `coldtrace-gateway`: the configuration node naming the gateway's REST API and the token the
 * flows use (COLDTRACE_GATEWAY_URL, COLDTRACE_GATEWAY_TOKEN). The token is read from the
 * environment when the flow starts; the flow file holds only `${COLDTRACE_GATEWAY_TOKEN}`.
 */
import { GatewayClient } from "../gateway-client.ts";
import { type Node, type NodeAPI, type NodeDef, optional, required } from "./red.ts";

export interface GatewayConfigNode extends Node {
  client?: GatewayClient;
  problem?: string;
}

/** The gateway client of the config node a node points at, or an error naming what is missing. */
export function gatewayOf(RED: NodeAPI, def: NodeDef): GatewayClient {
  const id = def.gateway;
  const n = typeof id === "string" ? (RED.nodes.getNode(id) as GatewayConfigNode | null) : null;
  if (!n)
    throw new Error(`${def.type} ${def.name || def.id}: no coldtrace-gateway configuration node selected`);
  if (!n.client) throw new Error(n.problem ?? "coldtrace-gateway is not configured");
  return n.client;
}

/** The gateway client, or undefined after reporting on the node why there is none. */
export function gatewayFor(RED: NodeAPI, node: Node, def: NodeDef): GatewayClient | undefined {
  try {
    return gatewayOf(RED, def);
  } catch (err) {
    node.error((err as Error).message);
    node.status({ fill: "red", shape: "ring", text: "no gateway" });
    return undefined;
  }
}

export default function register(RED: NodeAPI): void {
  RED.nodes.registerType("coldtrace-gateway", function (this: GatewayConfigNode, def: NodeDef) {
    RED.nodes.createNode(this, def);
    try {
      const url = required(def, "url", "COLDTRACE_GATEWAY_URL");
      new URL(url);
      const timeout = Number(optional(def, "timeoutMs") ?? 10_000);
      this.client = new GatewayClient({
        url,
        token: required(def, "token", "COLDTRACE_GATEWAY_TOKEN"),
        timeoutMs: timeout,
      });
    } catch (err) {
      this.problem = (err as Error).message;
      this.error(this.problem);
    }
  });
}
