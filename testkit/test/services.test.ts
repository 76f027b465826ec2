/** The shared plumbing itself works against the real services it hands out. */
import { open } from "node:fs/promises";
import mqtt from "mqtt";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import {
  freshPgSchema,
  mqttUrl,
  openPtyPair,
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
