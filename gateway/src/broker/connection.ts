/**
 * The gateway's own MQTT session, the same for the embedded broker and an external one:
 * a persistent session (clean: false, QoS 1 subscriptions) so the broker keeps agents'
 * messages while the gateway restarts, the retained gateway state `online` with a last will
 * `offline` (docs/protocol.md, gateway state), and an `EventSink` that publishes contract
 * events at QoS 1.
 */
import { encodePayload, formatTopic, type GatewayState, topicFilters, topicRules } from "@coldtrace/protocol";
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import type { Logger } from "pino";
import type { EventKind, EventSink } from "../ingest/ports.ts";

export interface GatewayConnectionOptions {
  url: string;
  gatewayId: string;
  username?: string | undefined;
  password?: string | undefined;
  log: Logger;
  now?: () => number;
  /** Called for each agent and movement message; `done` releases the next packet (backpressure). */
  onMessage(topic: string, payload: Buffer, done: () => void): void;
  /** Keep the session on the broker while the gateway is down (default true). */
  persistentSession?: boolean;
  /** Sites to subscribe to (default every site, `+`). */
  sites?: readonly string[];
  /** Extra subscriptions (e.g. the lots module's movements are already included). */
  extraFilters?: string[];
}

export interface GatewayConnection {
  client: MqttClient;
  sink: EventSink;
  /** Publish `offline` (retained) and disconnect. */
  close(): Promise<void>;
}

function statePayload(gatewayId: string, state: "online" | "offline", at: number): Buffer {
  const value: GatewayState = { v: 1, gatewayId, state, at };
  return encodePayload("gatewayState", value);
}

export async function connectGateway(opts: GatewayConnectionOptions): Promise<GatewayConnection> {
  const log = opts.log.child({ component: "mqtt" });
  const now = opts.now ?? Date.now;
  const stateTopic = formatTopic({ kind: "gatewayState", gatewayId: opts.gatewayId });
  const connectedAt = now();
  const options: IClientOptions = {
    clientId: `coldtrace-gateway-${opts.gatewayId}`,
    clean: opts.persistentSession === false,
    reconnectPeriod: 1000,
    keepalive: 30,
    ...(opts.username === undefined ? {} : { username: opts.username }),
    ...(opts.password === undefined ? {} : { password: opts.password }),
    will: {
      topic: stateTopic,
      payload: statePayload(opts.gatewayId, "offline", connectedAt),
      qos: 1,
      retain: true,
    },
  };
  // handleMessage is set before CONNECT: a persistent session may deliver queued messages
  // right after CONNACK.
  const client = connect(opts.url, options);
  client.handleMessage = (packet, callback) => {
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    opts.onMessage(packet.topic, payload, () => callback());
  };
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => {
      client.end(true);
      reject(err);
    };
    client.once("connect", () => {
      client.off("error", fail);
      resolve();
    });
    client.once("error", fail);
  });
  // TCP_NODELAY on every (re)connect: events are small and latency matters (Nagle + delayed ACK
  // would add ~40 ms per publish).
  const noDelay = () => (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  noDelay();
  client.on("connect", noDelay);
  client.on("error", (err) => log.warn({ err }, "mqtt error"));
  client.on("reconnect", () => log.info({ url: opts.url }, "mqtt reconnecting"));
  const online = async () => {
    await client.subscribeAsync(
      [
        ...(opts.sites ?? ["+"]).flatMap((site) => [
          topicFilters.agentAll(site),
          topicFilters.movements(site),
        ]),
        ...(opts.extraFilters ?? []),
      ],
      { qos: 1 },
    );
    await client.publishAsync(stateTopic, statePayload(opts.gatewayId, "online", now()), {
      qos: 1,
      retain: true,
    });
  };
  client.on("connect", (connack) => {
    if (!connack.sessionPresent) online().catch((err: unknown) => log.warn({ err }, "resubscribe failed"));
    else
      client
        .publishAsync(stateTopic, statePayload(opts.gatewayId, "online", now()), { qos: 1, retain: true })
        .catch((err: unknown) => log.warn({ err }, "state publish failed"));
  });
  await online();
  log.info({ url: opts.url, gatewayId: opts.gatewayId }, "gateway connected to broker");

  const sink: EventSink = {
    async publish(kind: EventKind, topic: string, payload: unknown) {
      const bytes = encodePayload(kind, payload as never);
      await client.publishAsync(topic, bytes, { qos: 1, retain: topicRules[kind].retain });
    },
  };

  return {
    client,
    sink,
    async close() {
      try {
        if (client.connected) {
          await client.publishAsync(stateTopic, statePayload(opts.gatewayId, "offline", now()), {
            qos: 1,
            retain: true,
          });
        }
      } catch (err) {
        log.warn({ err }, "offline state publish failed");
      }
      await client.endAsync();
    },
  };
}
