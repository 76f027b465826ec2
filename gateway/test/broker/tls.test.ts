/**
 * The embedded broker's optional TLS listener (broker.tls), with real MQTT clients over TLS and
 * a certificate from a throwaway CA: the same accounts and ACLs as on the plain port.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { encodePayload, formatTopic } from "@coldtrace/protocol";
import { issueTestCertificates, requireService, type TestCertificates } from "@coldtrace/testkit";
import { connectAsync, type MqttClient } from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialStore } from "../../src/broker/credentials.ts";
import { type EmbeddedBroker, startEmbeddedBroker } from "../../src/broker/embedded.ts";

const log = pino({ level: "silent" });
const openssl = await requireService("openssl");

describe.skipIf(!openssl.available)(`embedded broker over TLS ${openssl.reason}`, () => {
  let dir: string;
  let certs: TestCertificates;
  let broker: EmbeddedBroker;
  let secret: string;
  const clients: MqttClient[] = [];
  const options = (
    credentials: CredentialStore,
    tls: { port: number; certFile: string; keyFile: string },
  ) => ({
    host: "127.0.0.1",
    port: 0,
    tls,
    drainTimeoutMs: 2000,
    queueLimit: 42,
    concurrency: 100,
    credentials,
    log,
  });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-broker-tls-"));
    certs = issueTestCertificates(dir);
    const store = new CredentialStore();
    secret = (await store.add({ username: "pi-t", role: "agent", siteIds: ["s1"], agentId: "pi-t" })).secret;
    broker = await startEmbeddedBroker(
      options(store, { port: 0, certFile: certs.certFile, keyFile: certs.keyFile }),
    );
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await broker?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const tlsUrl = () => `mqtts://localhost:${broker.tlsPort}`;
  const connect = async (url: string, extra: Record<string, unknown> = {}) => {
    const c = await connectAsync(url, {
      clientId: `pi-t-${clients.length}`,
      username: "pi-t",
      password: secret,
      reconnectPeriod: 0,
      connectTimeout: 3000,
      ...extra,
    });
    clients.push(c);
    return c;
  };

  it("listens on its own port beside the plain one", () => {
    expect(broker.tlsPort).toBeGreaterThan(0);
    expect(broker.tlsPort).not.toBe(broker.port);
  });

  it("lets an agent that trusts the CA connect, log in and publish its readings at QoS 1", async () => {
    const c = await connect(tlsUrl(), {
      ca: await import("node:fs").then((fs) => fs.readFileSync(certs.caFile)),
    });
    const topic = formatTopic({ kind: "telemetry", siteId: "s1", agentId: "pi-t", unitId: "fridge-1" });
    const payload = encodePayload("telemetry", {
      v: 1,
      agentId: "pi-t",
      unitId: "fridge-1",
      sessionId: "s-1",
      sentAt: Date.UTC(2026, 10, 25),
      readings: [{ seq: 1, probeId: "p1", observedAt: Date.UTC(2026, 10, 25), tempC: 4.5, quality: "ok" }],
    });
    await expect(c.publishAsync(topic, payload, { qos: 1 })).resolves.toBeDefined();
  });

  it("applies the same login check as the plain port", async () => {
    const ca = readFileSync(certs.caFile);
    await expect(connect(tlsUrl(), { ca, password: "wrong" })).rejects.toThrow(
      /Bad username or password|Not authorized|bad user/i,
    );
  });

  it("is refused by a client that does not trust the certificate", async () => {
    const ca = readFileSync(certs.otherCaFile);
    await expect(connect(tlsUrl(), { ca })).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });

  it("does not speak plain MQTT on the TLS port", async () => {
    // A plain MQTT 3.1.1 CONNECT (client id "x", clean session) where a TLS ClientHello belongs.
    const connect = Buffer.from([0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 30, 0, 1, 0x78]);
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = net.connect({ host: "127.0.0.1", port: broker.tlsPort as number }, () =>
        socket.write(connect),
      );
      socket.setTimeout(5000, () => reject(new Error("the TLS port neither answered nor closed")));
      socket.on("data", (d) => chunks.push(d));
      socket.on("error", () => {}); // a reset is an answer too
      socket.on("close", () => resolve(Buffer.concat(chunks)));
    });
    // Closed without a CONNACK (0x20); at most a TLS alert record (0x15).
    expect(reply[0]).not.toBe(0x20);
  });

  it("names broker.tls when the certificate cannot be read, and broker.tls.port when it is taken", async () => {
    const missing = path.join(dir, "missing.pem");
    await expect(
      startEmbeddedBroker(
        options(new CredentialStore(), { port: 0, certFile: missing, keyFile: certs.keyFile }),
      ),
    ).rejects.toMatchObject({ code: "CT_CFG_UNREADABLE", message: expect.stringContaining("broker.tls") });
    await expect(
      startEmbeddedBroker(
        options(new CredentialStore(), {
          port: broker.tlsPort as number,
          certFile: certs.certFile,
          keyFile: certs.keyFile,
        }),
      ),
    ).rejects.toMatchObject({ code: "CT_BROKER_PORT", message: expect.stringContaining("broker.tls.port") });
  });
});
