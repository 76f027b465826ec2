/**
 * TLS and credentials: the publisher connects over mqtts:// to an aedes broker on a TLS server
 * with a certificate from a throwaway CA, authenticating with a username and a passwordFile.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import tls from "node:tls";
import { issueTestCertificates, requireService } from "@coldtrace/testkit";
import { Aedes } from "aedes";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Outbox } from "../../src/outbox/index.ts";
import { type MqttSettings, Publisher } from "../../src/publisher/index.ts";
import { tempDir } from "../helpers/tmp.ts";

const log = pino({ level: "silent" });
const openssl = await requireService("openssl");

describe.skipIf(!openssl.available)(`Publisher over TLS with a password file ${openssl.reason}`, () => {
  let tmp: ReturnType<typeof tempDir>;
  let aedes: Aedes;
  let server: tls.Server;
  let port: number;
  const logins: { username: string | undefined; ok: boolean }[] = [];

  beforeAll(async () => {
    tmp = tempDir();
    const f = (n: string) => join(tmp.dir, n);
    const certs = issueTestCertificates(tmp.dir);
    writeFileSync(f("password"), "s3cret\n");
    aedes = await Aedes.createBroker({
      authenticate: (_client, username, password, done) => {
        const ok = username === "pi-tls" && password?.toString() === "s3cret";
        logins.push({ username, ok });
        done(null, ok);
      },
    });
    server = tls.createServer(
      { key: readFileSync(certs.keyFile), cert: readFileSync(certs.certFile) },
      aedes.handle,
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    tmp.remove();
  });

  const settings = (passwordFile: string): MqttSettings => ({
    url: `mqtts://localhost:${port}`,
    username: "pi-tls",
    passwordFile,
    tls: { caFile: join(tmp.dir, "ca.pem"), rejectUnauthorized: true },
    keepaliveSec: 10,
    connectTimeoutMs: 2000,
    reconnect: { minMs: 20, maxMs: 50 },
    batchMaxReadings: 100,
    batchDelayMs: 5,
    inflightWindow: 8,
  });

  const publisher = (s: MqttSettings) =>
    new Publisher({
      siteId: "store-12",
      agentId: "pi-tls",
      settings: s,
      outbox: Outbox.open({
        path: join(tmp.dir, `${Math.random()}.db`),
        agentId: "pi-tls",
        maxReadings: 1000,
      }),
      birth: {
        agentId: "pi-tls",
        siteId: "store-12",
        agentVersion: "0.1.0",
        configHash: "0".repeat(64),
        startedAt: 1_764_057_600_000,
        units: [{ unitId: "fridge-2", kind: "fridge", probeIds: ["fridge-2-top"] }],
        probes: [
          {
            probeId: "fridge-2-top",
            unitId: "fridge-2",
            driver: "modbus-tcp",
            intervalMs: 10_000,
            calibrationOffsetC: 0,
            calibrationDueAt: null,
          },
        ],
      },
      log,
    });

  it("connects with the CA file and the password from the file", async () => {
    const p = publisher(settings(join(tmp.dir, "password")));
    const connected = new Promise<string>((resolve) => p.once("connected", resolve));
    p.start();
    expect(await connected).toMatch(/^s-/);
    expect(logins.at(-1)).toEqual({ username: "pi-tls", ok: true });
    await p.stop();
  });

  it("is refused with a wrong password and keeps retrying", async () => {
    writeFileSync(join(tmp.dir, "wrong"), "guess\n");
    const p = publisher(settings(join(tmp.dir, "wrong")));
    let connected = false;
    p.on("connected", () => {
      connected = true;
    });
    const before = logins.length;
    p.start();
    while (logins.length < before + 3) await new Promise((r) => setTimeout(r, 10));
    expect(logins.slice(before).every((l) => !l.ok)).toBe(true);
    expect(connected).toBe(false);
    await p.stop();
  });
});
