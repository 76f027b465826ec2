/**
 * The gateway's own MQTT session, the same for the embedded broker and an external one:
 * a persistent session (clean: false, QoS 1 subscriptions) so the broker keeps agents'
 * messages while the gateway restarts, the retained gateway state `online` with a last will
 * `offline` (docs/protocol.md, gateway state), and an `EventSink` that publishes contract
 * events at QoS 1.
 *
 * PUBACK after commit. mqtt.js sends a QoS 1 PUBACK when `handleMessage`'s callback is called,
 * and parses the next packet only then (node_modules/mqtt/build/lib/handlers/publish.js,
 * client.js `work`/`nextTickWork`): calling it once the readings are stored would serialise one
 * store commit per message, and calling it when the message is queued (as before) acknowledged
 * readings a crash could still lose. So the two are split:
 *
 *   PUBLISH ─▶ onMessage(topic, payload, resume, stored)
 *                resume()  → callback(DEFERRED): mqtt.js parses the next packet, sends no PUBACK
 *                stored()  → our PUBACK, written in receive order [MQTT-4.6.0-2]
 *
 * so group commit keeps batching every message in flight (aedes does not bound a subscriber's
 * in-flight window; Mosquitto's max_inflight_messages, 20 by default, bounds a batch to 20
 * messages). mqtt.js `customHandleAcks` would be the public way but exists only for MQTT 5,
 * which aedes does not speak; a SQLite inbox written before the PUBACK would cost a second
 * write of every message and work only for the SQLite store. A PUBACK is written only on the
 * connection the PUBLISH came in on: after a reconnect the same packet identifier may name
 * another message, and the broker redelivers unacknowledged ones to the persistent session.
 */
import { encodePayload, formatTopic, type GatewayState, topicFilters, topicRules } from "@coldtrace/protocol";
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import type { Logger } from "pino";
import type { EventKind, EventSink } from "../kernel/events.ts";

export interface GatewayConnectionOptions {
  url: string;
  gatewayId: string;
  username?: string | undefined;
  password?: string | undefined;
  log: Logger;
  now?: () => number;
  /**
   * Called for each agent and movement message. `resume` lets the client parse the next packet
   * (hold it for backpressure); `stored` once the message's data is committed sends its PUBACK
   * (QoS 1; in receive order, whatever order `stored` is called in).
   */
  onMessage(topic: string, payload: Buffer, resume: () => void, stored: () => void): void;
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

/** Given to mqtt.js's handleMessage callback: it then skips its own PUBACK (publish.js). */
const DEFERRED = new Error("PUBACK deferred until stored");

/** PUBACK with success and no properties: 0x40, remaining length 2, packet id (MQTT 3.1.1 §3.4, 5.0 §3.4.2.1). */
function puback(messageId: number): Buffer {
  return Buffer.from([0x40, 0x02, messageId >> 8, messageId & 0xff]);
}

interface PendingAck {
  messageId: number;
  stream: unknown;
  stored: boolean;
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
  const acks: PendingAck[] = [];
  let flushQueued = false;
  // One write per turn of the event loop for every PUBACK that became due (a batch commit
  // releases many).
  const flushAcks = () => {
    flushQueued = false;
    const out: Buffer[] = [];
    let stream: unknown;
    while (acks[0]?.stored) {
      const a = acks.shift() as PendingAck;
      if (a.stream !== client.stream || !client.connected) continue;
      stream = a.stream;
      out.push(puback(a.messageId));
    }
    if (out.length > 0 && stream === client.stream && client.stream.writable) {
      client.stream.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
    }
  };
  client.handleMessage = (packet, callback) => {
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    if (packet.qos !== 1 || packet.messageId === undefined) {
      opts.onMessage(
        packet.topic,
        payload,
        () => callback(),
        () => {},
      );
      return;
    }
    const ack: PendingAck = { messageId: packet.messageId, stream: client.stream, stored: false };
    acks.push(ack);
    opts.onMessage(
      packet.topic,
      payload,
      () => callback(DEFERRED),
      () => {
        ack.stored = true;
        if (acks[0] === ack && !flushQueued) {
          flushQueued = true;
          queueMicrotask(flushAcks);
        }
      },
    );
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
