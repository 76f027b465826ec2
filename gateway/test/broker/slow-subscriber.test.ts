/**
 * A frozen subscriber (it stops reading its socket) must not stall delivery to the others:
 * aedes' drainTimeout disconnects it (docs/Aedes.md, drainTimeout).
 */
import { connectAsync, type MqttClient } from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialStore } from "../../src/broker/credentials.ts";
import { type EmbeddedBroker, startEmbeddedBroker } from "../../src/broker/embedded.ts";

describe("embedded broker with a frozen subscriber", () => {
  let broker: EmbeddedBroker;
  const clients: MqttClient[] = [];
  const connect = async (clientId: string) => {
    const c = await connectAsync(broker.url, { ...broker.gatewayAccount, clientId, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    broker = await startEmbeddedBroker({
      host: "127.0.0.1",
      port: 0,
      drainTimeoutMs: 300,
      queueLimit: 42,
      concurrency: 100,
      credentials: new CredentialStore(),
      log: pino({ level: "silent" }),
    });
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await broker?.close();
  });

  it("keeps delivering to a live subscriber and drops the frozen one", async () => {
    const frozen = await connect("frozen");
    await frozen.subscribeAsync("load/#", { qos: 0 });
    // The frozen client does not read, so it would not notice its own close: ask the broker.
    const frozenDropped = new Promise<void>((r) =>
      broker.aedes.on("clientDisconnect", (c) => {
        if (c.id === "frozen") r();
      }),
    );
    frozen.stream.pause(); // stops reading: its TCP window fills, the broker's writes block

    const live = await connect("live");
    const total = 400;
    let received = 0;
    const all = new Promise<void>((resolve) =>
      live.on("message", () => {
        received++;
        if (received === total) resolve();
      }),
    );
    await live.subscribeAsync("load/#", { qos: 0 });

    const publisher = await connect("publisher");
    const payload = Buffer.alloc(100_000, 1); // 40 MB in all: far more than the socket buffers
    for (let i = 0; i < total; i++) publisher.publish(`load/${i}`, payload, { qos: 0 });
    await all;
    await frozenDropped;
    expect(received).toBe(total);
  });
});
