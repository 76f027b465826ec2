/** A contract-checking MQTT subscriber for tests: decodes every message and waits for conditions. */
import { decodeMessage, type Message } from "@coldtrace/protocol";
import mqtt, { type MqttClient } from "mqtt";

export interface Received {
  topic: string;
  retain: boolean;
  message: Message;
}

export interface TestSubscriber {
  messages: Received[];
  /** Messages that failed the contract (a test may publish bad ones on purpose). */
  invalid: { topic: string; error: unknown }[];
  client: MqttClient;
  /** Resolves when `predicate` holds over all messages so far (checked on every arrival). */
  waitFor(predicate: (messages: Received[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Clear retained messages under the site so the shared Mosquitto stays clean. */
  clearRetained(): Promise<void>;
  close(): Promise<void>;
}

export async function subscribe(url: string, filter: string): Promise<TestSubscriber> {
  const client = await mqtt.connectAsync(url, { clean: true, reconnectPeriod: 0 });
  const messages: Received[] = [];
  const invalid: { topic: string; error: unknown }[] = [];
  const retainedTopics = new Set<string>();
  const waiters: { check: () => boolean; resolve: () => void }[] = [];
  client.on("message", (topic, payload, packet) => {
    if (payload.length === 0) return;
    if (packet.retain) retainedTopics.add(topic);
    try {
      messages.push({ topic, retain: packet.retain, message: decodeMessage(topic, payload) });
    } catch (error) {
      invalid.push({ topic, error });
      return;
    }
    for (const w of [...waiters]) {
      if (w.check()) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return {
    messages,
    invalid,
    client,
    waitFor(predicate, what, timeoutMs = 15_000) {
      if (predicate(messages)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
        waiters.push({
          check: () => predicate(messages),
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    async clearRetained() {
      for (const m of messages) if (m.message.kind !== "telemetry") retainedTopics.add(m.topic);
      for (const topic of retainedTopics) await client.publishAsync(topic, "", { qos: 1, retain: true });
    },
    async close() {
      await client.endAsync();
    },
  };
}
