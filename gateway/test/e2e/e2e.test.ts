/**
 * End to end: simulated agents (the fleet generator) → broker → gateway (real ingest, SQLite,
 * real excursion engine) → excursion and alarm events seen by an independent MQTT subscriber.
 * Once with the embedded aedes broker (device credentials and ACLs on), once with the
 * machine's Mosquitto (unique site ids per run: the broker is shared).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { decodeMessage, type Message, topicFilters } from "@coldtrace/protocol";
import { Fleet } from "@coldtrace/simulators";
import { mqttUrl, requireService } from "@coldtrace/testkit";
import { connectAsync, type IClientOptions, type MqttClient } from "mqtt";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { type GatewayRuntime, startGateway } from "../../src/app/gateway.ts";
import { CredentialStore } from "../../src/broker/credentials.ts";
import { builtinExtensions } from "../../src/cli/builtins.ts";
import { parseGatewayConfig } from "../../src/config/load.ts";
import { until } from "../ingest/harness.ts";

const MIN = 60_000;

interface Run {
  gw: GatewayRuntime;
  fleet: Fleet;
  sub: MqttClient;
  events: Message[];
  dir: string;
  external: boolean;
}

async function scenario(mode: "embedded" | "external"): Promise<Run> {
  const dir = await mkdtemp(path.join(tmpdir(), "ct-e2e-"));
  const prefix = `e2e${randomBytes(3).toString("hex")}`;
  const startAt = Math.floor(Date.now() / MIN) * MIN - 3 * 60 * MIN;
  const sites = [`${prefix}-1`, `${prefix}-2`];
  const credentials = new CredentialStore();
  const secrets = new Map<string, string>();
  if (mode === "embedded") {
    for (const site of sites) {
      const agentId = `${site}-pi`;
      secrets.set(
        agentId,
        (await credentials.add({ username: agentId, role: "agent", siteIds: [site], agentId })).secret,
      );
    }
    secrets.set(
      "monitor",
      (await credentials.add({ username: "monitor", role: "monitor", siteIds: sites })).secret,
    );
  }
  const config = parseGatewayConfig(
    {
      gatewayId: `gw-${prefix}`,
      broker:
        mode === "embedded"
          ? { host: "127.0.0.1", port: 0 }
          : { mode: "external", url: mqttUrl(), persistentSession: false, subscribeSites: sites },
      api: { enabled: false },
      ingest: { batchMaxDelayMs: 2 },
      storage: {
        records: { backend: "sqlite", path: "ct.db" },
        readings: { backend: "sqlite" },
      },
    },
    "e2e",
    dir,
  );
  const gw = await startGateway({
    config,
    log: pino({ level: "warn" }),
    credentials,
    extensions: builtinExtensions(config),
  });

  const events: Message[] = [];
  const subOptions: IClientOptions = {
    clientId: `${prefix}-monitor`,
    reconnectPeriod: 0,
    ...(mode === "embedded" ? { username: "monitor", password: secrets.get("monitor") } : {}),
  };
  const sub = await connectAsync(gw.brokerUrl, subOptions);
  sub.on("message", (topic, payload) => events.push(decodeMessage(topic, payload)));
  for (const site of sites) await sub.subscribeAsync(topicFilters.events(site), { qos: 1 });

  const fleet = new Fleet({
    url: gw.brokerUrl,
    sites: 2,
    units: 2,
    probes: 2,
    sitePrefix: prefix,
    intervalMs: MIN,
    startAt,
    // Site 2, unit 1: 14 °C from minute 20 for 15 minutes — above the fridge range (8 °C) and
    // its action limit (12 °C) for longer than the action delay.
    excursion: { site: 1, unit: 0, afterMs: 20 * MIN, durationMs: 15 * MIN, tempC: 14 },
    ...(mode === "embedded"
      ? { credentials: (a) => ({ username: a.agentId, password: secrets.get(a.agentId) as string }) }
      : {}),
  });
  await fleet.start();
  return { gw, fleet, sub, events, dir, external: mode === "external" };
}

async function runAndCheck(run: Run) {
  const { gw, fleet, events } = run;
  const unitId = `${fleet.options.sitePrefix}-2-u1`;
  const start = fleet.options.startAt;
  await until(
    () => gw.ingest.pendingReadings === 0 && (gw.metrics.messagesByKind.get("birth") ?? 0) >= 2,
    "births",
  );
  // 60 simulated minutes, in 6 steps as an agent would send them live.
  for (let m = 10; m <= 60; m += 10) await fleet.advanceTo(start + m * MIN);
  const sent = fleet.readingsSent;
  await until(() => gw.metrics.readingsStored >= sent, "all readings stored");
  await until(
    () => events.some((e) => e.kind === "excursion" && e.payload.type === "excursion.closed"),
    "excursion.closed on the broker",
  );
  await until(
    () => events.some((e) => e.kind === "alarm" && e.payload.type === "alarm.raised"),
    "alarm.raised",
  );

  const excursion = events.filter((e) => e.kind === "excursion").map((e) => e.payload);
  expect(excursion[0]).toMatchObject({
    type: "excursion.opened",
    unitId,
    side: "high",
    startedAt: start + 20 * MIN,
  });
  expect(excursion.at(-1)).toMatchObject({
    type: "excursion.closed",
    unitId,
    tier: "action",
    startedAt: start + 20 * MIN,
    endedAt: start + 35 * MIN,
    peakC: 14,
  });
  const alarms = events.filter((e) => e.kind === "alarm").map((e) => e.payload);
  expect(alarms.filter((a) => a.type === "alarm.raised").map((a) => [a.unitId, a.tier])).toEqual(
    expect.arrayContaining([[unitId, "action"]]),
  );
  // Every event concerns the one unit that had the excursion.
  expect(new Set([...excursion, ...alarms].map((e) => e.unitId))).toEqual(new Set([unitId]));
  // Zero loss: every reading the fleet sent is a row.
  let rows = 0;
  for (const a of fleet.agents)
    for (const u of a.unitIds)
      rows += (await gw.storage.readings.range({ unitId: u, from: 0, to: start + 120 * MIN })).length;
  expect(rows).toBe(sent);
  expect(await gw.storage.records.getExcursion(excursion.at(-1)?.excursionId as string)).toMatchObject({
    endedAt: start + 35 * MIN,
  });
}

let current: Run | undefined;
afterEach(async () => {
  if (!current) return;
  const r = current;
  current = undefined;
  await r.fleet.stop();
  await r.gw.stop();
  if (r.external) {
    // Clear the fleet's retained births and states from the shared broker.
    for (const a of r.fleet.agents) {
      for (const leaf of ["birth", "state"]) {
        await r.sub.publishAsync(`ct/v1/${a.siteId}/agent/${a.agentId}/${leaf}`, "", {
          qos: 1,
          retain: true,
        });
      }
    }
  }
  await r.sub.endAsync();
  await rm(r.dir, { recursive: true, force: true });
});

describe("end to end", () => {
  it("embedded broker: fleet → aedes (ACL) → gateway → excursion and alarm events", async () => {
    current = await scenario("embedded");
    await runAndCheck(current);
  });
});

const mosquitto = await requireService("mosquitto");
describe.skipIf(!mosquitto.available)(`end to end on Mosquitto ${mosquitto.reason}`, () => {
  it("Mosquitto: fleet → Mosquitto → gateway → excursion and alarm events", async () => {
    current = await scenario("external");
    await runAndCheck(current);
  });
});
