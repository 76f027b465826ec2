/**
 * The embedded MQTT broker: aedes 1.x on a TCP port (and optionally TLS), with device
 * authentication and topic ACLs. The gateway itself connects to it as an ordinary MQTT
 * client with an in-memory `gateway` account, so ingest runs the same code path as with an
 * external Mosquitto.
 *
 *   agent ──CONNECT──▶ authenticate (scrypt) ──▶ authorizePublish (acl.ts, strip retain)
 *                                                 authorizeSubscribe (acl.ts)
 *
 * Delivery safety: `drainTimeout` disconnects a subscriber whose socket stays full, so a slow
 * or frozen client cannot stall delivery to the others (aedes docs/Aedes.md, drainTimeout);
 * `queueLimit` bounds what is queued per client before its session is up;
 * `maxQueuedMessages` / `maxQueuedBytes` bound what is held for an offline persistent session
 * (offline-queue.ts: new messages beyond the bound are dropped, as in Mosquitto).
 */
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { finished } from "node:stream";
import { createServer as createTlsServer } from "node:tls";
import { ColdtraceError, topicRules } from "@coldtrace/protocol";
import { Aedes, type Client } from "aedes";
import type { Logger } from "pino";
import { mayPublish, maySubscribe } from "./acl.ts";
import { type CredentialStore, generateSecret, type Identity } from "./credentials.ts";
import {
  defaultOfflineQueueLimits,
  OfflineQueueBound,
  type OfflineQueueStats,
  type OutgoingPersistence,
} from "./offline-queue.ts";

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  tls?: { port: number; certFile: string; keyFile: string } | undefined;
  drainTimeoutMs: number;
  queueLimit: number;
  /**
   * Messages held per offline persistent (cleanSession: false) client; newer ones are
   * dropped. Default `defaultOfflineQueueLimits.maxMessages` (broker.maxQueuedMessages).
   */
  maxQueuedMessages?: number | undefined;
  /** Payload bytes held per offline persistent client; 0 = no byte bound (broker.maxQueuedBytes). */
  maxQueuedBytes?: number | undefined;
  concurrency: number;
  credentials: CredentialStore;
  log: Logger;
}

export interface EmbeddedBroker {
  /** mqtt://host:port for clients on this machine. */
  url: string;
  port: number;
  tlsPort?: number;
  aedes: Aedes;
  /** The account the gateway's own MQTT client uses (generated per start, never stored). */
  gatewayAccount: { username: string; password: string };
  /** Offline-queue bound counters: `queues.droppedTotal()` for the gateway's metrics. */
  queues: OfflineQueueStats;
  /**
   * Hand agent and ERP data to ingest before the broker acknowledges it (see `Handoff`).
   * Unset, the broker acknowledges on receipt, as any broker does.
   */
  setHandoff(handoff: Handoff | undefined): void;
  close(): Promise<void>;
}

/**
 * Resolves once the message's data is committed. aedes writes a QoS 1 PUBACK right after
 * `authorizePublish` and before delivering the message, so on its own it acknowledges an agent's
 * readings before the gateway has stored them, and a kill -9 of the gateway (which takes the
 * broker with it) would lose them although the agent deleted them from its outbox. With a
 * handoff, `authorizePublish` gives agent/ERP data to the same ingest the gateway's MQTT client
 * feeds and answers only after the commit; `authorizeForward` then skips the gateway's own
 * client for that message, so it is ingested once. Other subscribers get it as usual.
 */
export type Handoff = (topic: string, payload: Buffer) => Promise<void>;

/** Topic kinds ingest stores: what must be committed before an agent or the ERP gets its PUBACK. */
const handedKinds = new Set(["telemetry", "birth", "agentState", "gap", "movement"]);

type AuthError = Error & { returnCode: number };

function listen(server: Server, host: string, port: number, setting: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === "EADDRINUSE" ? "the port is already in use (another broker?)" : err.message;
      reject(
        new ColdtraceError(
          "CT_BROKER_PORT",
          `embedded broker cannot listen on ${host}:${port}: ${why}; set ${setting} to a free port, or broker.mode: external`,
          { host, port, setting, errno: err.code },
          { cause: err },
        ),
      );
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const log = opts.log.child({ component: "broker" });
  const identities = new WeakMap<Client, Identity>();
  let handoff: Handoff | undefined;
  // Payload buffers already given to ingest: aedes keeps the same Buffer when it wraps the
  // packet for delivery, so authorizeForward can recognise them. Weak: gone with the packet.
  const handed = new WeakSet<Buffer>();
  const gatewayAccount = { username: `_gateway-${generateSecret().slice(0, 8)}`, password: generateSecret() };
  const gatewayIdentity: Identity = { username: gatewayAccount.username, role: "gateway", siteIds: ["*"] };
  const queues = new OfflineQueueBound(
    {
      maxMessages: opts.maxQueuedMessages ?? defaultOfflineQueueLimits.maxMessages,
      maxBytes: opts.maxQueuedBytes ?? defaultOfflineQueueLimits.maxBytes,
    },
    log,
  );
  /** Client ids the gateway's own account connected with (sessions outlive connections). */
  const gatewayClients = new Set<string>();
  // Online from authentication (before aedes restores the session's subscriptions) until
  // the connection closes; a second connection with the same id counts separately.
  const accepted = (client: Client, identity: Identity) => {
    identities.set(client, identity);
    const id = client.id;
    if (identity.role === "gateway") gatewayClients.add(id);
    else gatewayClients.delete(id); // the id's session now belongs to someone else
    queues.online(id, identity.role === "gateway");
    // finished() also calls back for a connection that closed during authentication.
    finished(client.conn, () => queues.offline(id));
  };

  const aedes = await Aedes.createBroker({
    drainTimeout: opts.drainTimeoutMs,
    queueLimit: opts.queueLimit,
    concurrency: opts.concurrency,
    // Agent client ids are agent ids (up to 64 characters), above MQTT 3.1's 23.
    maxClientsIdLength: 128,
    authenticate(client, username, password, done) {
      const secret = password?.toString("utf8");
      if (username === gatewayAccount.username && secret === gatewayAccount.password) {
        accepted(client, gatewayIdentity);
        done(null, true);
        return;
      }
      opts.credentials.authenticate(username, secret).then(
        (identity) => {
          if (!identity) {
            log.warn({ clientId: client.id, username }, "mqtt login refused");
            const err = new Error("bad username or password") as AuthError;
            err.returnCode = 4; // MQTT 3.1.1 §3.2.2.3: 4 = bad user name or password
            done(err as never, false);
            return;
          }
          accepted(client, identity);
          done(null, true);
        },
        (err: unknown) => done(err as never, false),
      );
    },
    authorizePublish(client, packet, done) {
      if (client === null) {
        done(null); // published by the broker itself
        return;
      }
      const identity = identities.get(client);
      if (!identity) {
        done(new Error("not authenticated"));
        return;
      }
      const decision = mayPublish(identity, packet.topic);
      if (!decision.allowed) {
        log.warn({ clientId: client.id, username: identity.username, topic: packet.topic }, "publish denied");
        done(new Error(`not authorized to publish on ${packet.topic}`));
        return;
      }
      // Only small state topics are retained, never readings (docs/protocol.md).
      if (packet.retain && decision.topic && !topicRules[decision.topic.kind].retain) packet.retain = false;
      const payload = packet.payload;
      if (
        handoff &&
        packet.qos === 1 &&
        (identity.role === "agent" || identity.role === "erp") &&
        decision.topic &&
        handedKinds.has(decision.topic.kind) &&
        Buffer.isBuffer(payload)
      ) {
        handed.add(payload);
        handoff(packet.topic, payload).then(
          () => done(null),
          (err: unknown) => {
            // Not stored: deliver it to the gateway's client as usual, which retries.
            handed.delete(payload);
            log.warn({ err, clientId: client.id, topic: packet.topic }, "handoff to ingest failed");
            done(null);
          },
        );
        return;
      }
      done(null);
    },
    authorizeForward(client, packet) {
      if (Buffer.isBuffer(packet.payload) && handed.has(packet.payload)) {
        if (identities.get(client)?.role === "gateway") return null;
      }
      return packet;
    },
    authorizeSubscribe(client, sub, done) {
      const identity = identities.get(client);
      if (!identity || !maySubscribe(identity, sub.topic)) {
        log.warn(
          { clientId: client.id, username: identity?.username, filter: sub.topic },
          "subscribe denied",
        );
        done(null, null); // SUBACK 0x80 for this filter (MQTT 3.1.1 §3.9.3)
        return;
      }
      done(null, sub);
    },
  });

  // aedes 1.x calls the persistence's promise API on `aedes.persistence`, set up by createBroker.
  // Handed messages are withheld from the gateway's own clients (authorizeForward), so they
  // are not queued for their sessions either.
  queues.wrap(
    (aedes as unknown as { persistence: OutgoingPersistence }).persistence,
    (clientId, packet) =>
      gatewayClients.has(clientId) && Buffer.isBuffer(packet.payload) && handed.has(packet.payload),
  );

  // Why a connection ended. Agents come and go (info); the gateway's own client losing its
  // connection means its last will told every agent "offline" (warn).
  let closing = false;
  aedes.on("clientError", (client, err) => {
    const role = identities.get(client)?.role;
    const fields = { clientId: client.id, role, err: err.message };
    // "connection closed": aedes had something to write to a client that had just gone (the
    // gateway's own client on its way out, too); the close itself is the news, not an error.
    if (closing || err.message === "connection closed")
      log.debug(fields, "client connection ended mid-write");
    else if (role === "gateway") log.warn(fields, "gateway client connection failed");
    else log.info(fields, "client connection failed");
  });

  // TCP_NODELAY: small MQTT packets (PUBACKs, events) must not wait for Nagle's algorithm to
  // meet the peer's delayed ACK (~40 ms per exchange on Linux).
  const tcp = createServer({ noDelay: true }, aedes.handle);
  let port: number;
  try {
    port = await listen(tcp, opts.host, opts.port, "broker.port");
  } catch (err) {
    await new Promise<void>((r) => aedes.close(() => r()));
    throw err;
  }
  let tls: Server | undefined;
  let tlsPort: number | undefined;
  if (opts.tls) {
    try {
      const [cert, key] = await Promise.all([readFile(opts.tls.certFile), readFile(opts.tls.keyFile)]);
      tls = createTlsServer({ cert, key, noDelay: true }, aedes.handle);
      tlsPort = await listen(tls, opts.host, opts.tls.port, "broker.tls.port");
    } catch (err) {
      await closeServer(tcp);
      await new Promise<void>((r) => aedes.close(() => r()));
      if (err instanceof ColdtraceError) throw err;
      throw new ColdtraceError(
        "CT_CFG_UNREADABLE",
        `broker.tls: cannot read certificate or key: ${(err as Error).message}`,
        { certFile: opts.tls.certFile, keyFile: opts.tls.keyFile },
        { cause: err },
      );
    }
  }
  const host = opts.host === "0.0.0.0" || opts.host === "::" ? "127.0.0.1" : opts.host;
  log.info({ host: opts.host, port, tlsPort }, "embedded broker listening");
  return {
    url: `mqtt://${host}:${port}`,
    port,
    ...(tlsPort === undefined ? {} : { tlsPort }),
    aedes,
    gatewayAccount,
    queues,
    setHandoff(h) {
      handoff = h;
    },
    async close() {
      closing = true;
      await new Promise<void>((r) => aedes.close(() => r()));
      await Promise.all([closeServer(tcp), tls ? closeServer(tls) : Promise.resolve()]);
    },
  };
}
