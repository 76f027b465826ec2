/** The shared plumbing itself works against the real services it hands out. */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import mqtt from "mqtt";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import {
  freshPgSchema,
  issueTestCertificates,
  mqttUrl,
  openPtyPair,
  probes,
  requireService,
  startEmbeddedBroker,
  startInfluxd,
} from "../src/index.ts";

async function pubSubRoundTrip(url: string): Promise<string> {
  const client = await mqtt.connectAsync(url, { clientId: `ct-testkit-${process.pid}-${Math.random()}` });
  try {
    const topic = `ct-test/testkit/${Date.now()}-${Math.random()}`;
    const got = new Promise<string>((resolve) => client.on("message", (_t, p) => resolve(p.toString())));
    await client.subscribeAsync(topic, { qos: 1 });
    await client.publishAsync(topic, "hello", { qos: 1 });
    return await got;
  } finally {
    await client.endAsync();
  }
}

describe("embedded broker", () => {
  it("delivers a QoS 1 message", async () => {
    const broker = await startEmbeddedBroker();
    try {
      expect(await pubSubRoundTrip(broker.url)).toBe("hello");
    } finally {
      await broker.close();
    }
  });
});

const mosquitto = await requireService("mosquitto");
describe.skipIf(!mosquitto.available)(`Mosquitto at ${mqttUrl()} ${mosquitto.reason}`, () => {
  it("delivers a QoS 1 message", async () => {
    expect(await pubSubRoundTrip(mqttUrl())).toBe("hello");
  });
});

const postgres = await requireService("postgres");
describe.skipIf(!postgres.available)(`PostgreSQL ${postgres.reason}`, () => {
  it("gives each suite its own schema", async () => {
    const schema = await freshPgSchema();
    try {
      const client = new pg.Client({ connectionString: schema.connectionString });
      await client.connect();
      await client.query("CREATE TABLE t (x int)");
      const { rows } = await client.query("SELECT current_schema() AS s");
      await client.end();
      expect(rows[0].s).toBe(schema.schema);
    } finally {
      await schema.drop();
    }
  });
});

const influxd = await requireService("influxd");
describe.skipIf(!influxd.available)(`influxd ${influxd.reason}`, () => {
  const handles: Array<{ stop(): Promise<void> }> = [];
  afterAll(async () => {
    for (const h of handles) await h.stop();
  });
  it("starts on a spare port and answers queries", async () => {
    const h = await startInfluxd();
    handles.push(h);
    const res = await fetch(`${h.url}/query?q=${encodeURIComponent("CREATE DATABASE probe")}`, {
      method: "POST",
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { results: unknown[] };
    expect(body.results).toHaveLength(1);
  });
});

const socat = await requireService("socat");
describe.skipIf(!socat.available)(`socat ${socat.reason}`, () => {
  it("makes a pseudo-terminal pair that carries bytes both ways", async () => {
    const pair = await openPtyPair();
    try {
      const a = await open(pair.a, "r+");
      const b = await open(pair.b, "r+");
      await a.write(Buffer.from([0x01, 0x03, 0x00]));
      const buf = Buffer.alloc(3);
      const { bytesRead } = await b.read(buf, 0, 3);
      expect(buf.subarray(0, bytesRead)).toEqual(Buffer.from([0x01, 0x03, 0x00]));
      await a.close();
      await b.close();
    } finally {
      await pair.close();
    }
  });
});

describe("binary services", () => {
  it("names the missing program and its Debian package", async () => {
    const saved = process.env.COLDTRACE_TEST_INFLUXD;
    process.env.COLDTRACE_TEST_INFLUXD = "/nonexistent/influxd";
    try {
      expect(await probes.influxd()).toEqual({
        name: "influxd",
        available: false,
        reason: "/nonexistent/influxd not found (apt-get install influxdb)",
      });
    } finally {
      if (saved === undefined) delete process.env.COLDTRACE_TEST_INFLUXD;
      else process.env.COLDTRACE_TEST_INFLUXD = saved;
    }
  });
});

const openssl = await requireService("openssl");
describe.skipIf(!openssl.available)(`issueTestCertificates ${openssl.reason}`, () => {
  it("makes a server certificate for localhost and 127.0.0.1 signed by its CA, and an unrelated CA", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ct-testkit-tls-"));
    try {
      const c = issueTestCertificates(dir);
      const ca = new X509Certificate(readFileSync(c.caFile));
      const other = new X509Certificate(readFileSync(c.otherCaFile));
      const server = new X509Certificate(readFileSync(c.certFile));
      expect(server.verify(ca.publicKey)).toBe(true);
      expect(server.verify(other.publicKey)).toBe(false);
      expect(server.checkHost("localhost")).toBe("localhost");
      expect(server.checkIP("127.0.0.1")).toBe("127.0.0.1");
      expect(readFileSync(c.keyFile, "utf8")).toContain("PRIVATE KEY");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
