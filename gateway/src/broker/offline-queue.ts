/**
 * A bound on what the embedded broker holds for each offline persistent session.
 *
 * aedes keeps every QoS > 0 message for a `cleanSession: false` subscriber in its
 * persistence's outgoing queue until the subscriber PUBACKs it; while the subscriber is away
 * that queue only grows (aedes-persistence MemoryPersistence: one array per client id, no
 * limit). aedes' own `queueLimit` covers only packets received before a session is set up.
 * This module wraps the persistence's outgoing-queue methods in place:
 *
 *   publish ──▶ outgoingEnqueueCombi(subs) ──▶ per sub: online? keep
 *                                                      offline and below the bound? keep
 *                                                      else drop (count it, warn once)
 *   PUBACK / clean reconnect ──▶ outgoingClearMessageId ──▶ the client's count goes down
 *
 * Policy, as Mosquitto's `max_queued_messages` / `max_queued_bytes` (mosquitto.conf(5)):
 * once an offline client's queue holds `maxMessages` messages (or `maxBytes` payload bytes),
 * NEW messages for it are dropped; the oldest are kept, so the client resumes with an
 * unbroken run of history and a gap at the end. The bound never applies while the client is
 * connected (its queue then only holds messages in flight), so online delivery is unaffected,
 * nor to the gateway's own session (dropping there would lose readings).
 * An overflow episode starts at the first drop and ends when the client connects again:
 * one warn at its start, one info with the number dropped at its end.
 */
import type { Logger } from "pino";

export interface OfflineQueueLimits {
  /** Messages held per offline persistent client; new ones beyond it are dropped. */
  maxMessages: number;
  /** Payload bytes held per offline persistent client; 0 = no byte bound. */
  maxBytes: number;
}

/** Mosquitto's max_queued_messages default (1000), and 16 MiB of payload per client. */
export const defaultOfflineQueueLimits: Readonly<OfflineQueueLimits> = Object.freeze({
  maxMessages: 1000,
  maxBytes: 16 * 1024 * 1024,
});

/** What the gateway can expose (GET /metrics) and tests can assert. */
export interface OfflineQueueStats {
  /** Messages dropped since the broker started because an offline client's queue was full. */
  droppedTotal(): number;
  /** Messages and payload bytes the broker holds for one client (queued and in flight). */
  queued(clientId: string): { messages: number; bytes: number };
  /** Clients in an overflow episode now (offline and dropping). */
  overflowingClients(): number;
}

export interface QueuedPacket {
  payload?: Buffer | string | undefined;
  messageId?: number | undefined;
  brokerId?: string | undefined;
  brokerCounter?: number | undefined;
}

/** The part of the aedes 1.x persistence (promise API, aedes-persistence 11) wrapped here. */
export interface OutgoingPersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: QueuedPacket): Promise<void>;
  outgoingUpdate(client: { id: string }, packet: QueuedPacket): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: QueuedPacket): Promise<QueuedPacket | undefined>;
}

interface ClientQueue {
  messages: number;
  bytes: number;
  /** Drops in the current overflow episode; > 0 means overflowing. */
  dropped: number;
  /** Keys of recently dropped packets (see outgoingUpdate below). */
  recentDrops: Set<string>;
}

const RECENT_DROPS = 256;

function payloadBytes(packet: QueuedPacket | undefined): number {
  const p = packet?.payload;
  if (p === undefined) return 0;
  return typeof p === "string" ? Buffer.byteLength(p) : p.length;
}

function packetKey(packet: QueuedPacket): string {
  return `${packet.brokerId}:${packet.brokerCounter}`;
}

export class OfflineQueueBound implements OfflineQueueStats {
  readonly #limits: OfflineQueueLimits;
  readonly #log: Logger;
  readonly #queues = new Map<string, ClientQueue>();
  /** Client ids last authenticated as the gateway itself: never bounded. */
  readonly #exempt = new Set<string>();
  /** Connections per client id (two while a takeover is under way). */
  readonly #online = new Map<string, number>();
  #dropped = 0;

  constructor(limits: OfflineQueueLimits, log: Logger) {
    this.#limits = limits;
    this.#log = log;
  }

  droppedTotal(): number {
    return this.#dropped;
  }

  queued(clientId: string): { messages: number; bytes: number } {
    const q = this.#queues.get(clientId);
    return { messages: q?.messages ?? 0, bytes: q?.bytes ?? 0 };
  }

  overflowingClients(): number {
    let n = 0;
    for (const q of this.#queues.values()) if (q.dropped > 0) n++;
    return n;
  }

  /**
   * A connection for `clientId` is authenticated: from now on its messages are delivered
   * live and never dropped. Call `offline` when that connection closes. `exempt`: the
   * client's offline queue is never bounded (the gateway's own session: its queue holds
   * readings that agents have already deleted from their outboxes).
   */
  online(clientId: string, exempt = false): void {
    if (exempt) this.#exempt.add(clientId);
    else this.#exempt.delete(clientId);
    this.#online.set(clientId, (this.#online.get(clientId) ?? 0) + 1);
    const q = this.#queues.get(clientId);
    if (q && q.dropped > 0) {
      this.#log.info(
        { clientId, droppedMessages: q.dropped, maxQueuedMessages: this.#limits.maxMessages },
        "offline queue overflow ended: client reconnected",
      );
      q.dropped = 0;
    }
  }

  offline(clientId: string): void {
    const n = (this.#online.get(clientId) ?? 0) - 1;
    if (n > 0) this.#online.set(clientId, n);
    else this.#online.delete(clientId);
  }

  /**
   * Replaces the outgoing-queue methods of an aedes persistence instance in place.
   * `withheld(clientId, packet)`: the broker will not deliver this packet to this client
   * (authorizeForward returns null), so it is never queued for it, and aedes' attempt to clear
   * it is a no-op. aedes clears such a packet by message id, which it has not assigned yet
   * (undefined), and the persistence would remove whatever other entry of that client has no
   * id yet either: a message still waiting for delivery, which aedes then fails to send
   * ("no such packet") and drops the client's connection.
   */
  wrap(
    persistence: OutgoingPersistence,
    withheld: (clientId: string, packet: QueuedPacket) => boolean = () => false,
  ): void {
    const enqueueCombi = persistence.outgoingEnqueueCombi.bind(persistence);
    const update = persistence.outgoingUpdate.bind(persistence);
    const clear = persistence.outgoingClearMessageId.bind(persistence);

    const enqueue = async (subs: { clientId: string }[], packet: QueuedPacket): Promise<void> => {
      const kept = subs.filter((sub) => !withheld(sub.clientId, packet) && this.#admit(sub.clientId, packet));
      if (kept.length === 0) return;
      try {
        await enqueueCombi(kept, packet);
      } catch (err) {
        for (const sub of kept) this.#release(sub.clientId, payloadBytes(packet));
        throw err;
      }
    };
    persistence.outgoingEnqueueCombi = enqueue;
    persistence.outgoingEnqueue = (sub, packet) => enqueue([sub], packet);

    persistence.outgoingClearMessageId = async (client, packet) => {
      if (packet.messageId === undefined && withheld(client.id, packet)) return undefined;
      const removed = await clear(client, packet);
      if (removed) this.#release(client.id, payloadBytes(removed));
      return removed;
    };

    // A message dropped while its client was still offline can reach the client's live
    // subscription when the client connects in between (mqemitter may hold a message
    // before matching it). aedes then updates a queue entry that does not exist and would
    // disconnect the client ("no such packet"); deliver it unstored instead.
    persistence.outgoingUpdate = async (client, packet) => {
      try {
        await update(client, packet);
      } catch (err) {
        if (this.#queues.get(client.id)?.recentDrops.has(packetKey(packet))) return;
        throw err;
      }
    };
  }

  /** Reserves room for `packet` in the client's queue, or counts a drop. */
  #admit(clientId: string, packet: QueuedPacket): boolean {
    let q = this.#queues.get(clientId);
    if (!q) {
      q = { messages: 0, bytes: 0, dropped: 0, recentDrops: new Set() };
      this.#queues.set(clientId, q);
    }
    const bytes = payloadBytes(packet);
    const { maxMessages, maxBytes } = this.#limits;
    const full = q.messages >= maxMessages || (maxBytes > 0 && q.bytes + bytes > maxBytes);
    if (!full || this.#online.has(clientId) || this.#exempt.has(clientId)) {
      q.messages++;
      q.bytes += bytes;
      return true;
    }
    this.#dropped++;
    if (q.dropped === 0) {
      this.#log.warn(
        {
          clientId,
          queuedMessages: q.messages,
          queuedBytes: q.bytes,
          maxQueuedMessages: maxMessages,
          maxQueuedBytes: maxBytes,
        },
        "offline queue full: dropping new messages for this client until it reconnects",
      );
    }
    q.dropped++;
    q.recentDrops.add(packetKey(packet));
    if (q.recentDrops.size > RECENT_DROPS) {
      const oldest = q.recentDrops.values().next().value;
      if (oldest !== undefined) q.recentDrops.delete(oldest);
    }
    return false;
  }

  #release(clientId: string, bytes: number): void {
    const q = this.#queues.get(clientId);
    if (!q) return;
    q.messages = Math.max(0, q.messages - 1);
    q.bytes = Math.max(0, q.bytes - bytes);
    if (q.messages === 0 && q.dropped === 0) this.#queues.delete(clientId);
  }
}
