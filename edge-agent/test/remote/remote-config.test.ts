/**
 * Remote configuration with the real agent process (`coldtrace-agent run`), a real broker
 * (embedded aedes) and the Modbus TCP simulator; the gateway's side is played by a plain MQTT
 * client publishing on the contract topic. A push is applied and confirmed with its version
 * and hash, survives a restart, and loses no reading; a bad configuration is refused with
 * every problem named; a configuration that loses the broker is rolled back by the agent
 * itself.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: tests mutate free-form configuration documents
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type AgentConfigInput,
  agentConfigSchema,
  type ConfigReported,
  configDocumentHash,
  encodePayload,
  formatTopic,
} from "@coldtrace/protocol";
import { startTcpSlave, type TcpSlaveSim } from "@coldtrace/simulators";
import { type EmbeddedBroker, freePort, startEmbeddedBroker } from "@coldtrace/testkit";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { readOutboxSnapshot } from "../../src/outbox/index.ts";
import { type AgentProcess, startAgentProcess } from "../helpers/agent-process.ts";
import { subscribe, type TestSubscriber } from "../helpers/subscriber.ts";
import { tempDir } from "../helpers/tmp.ts";

const SITE = "store-12";
const AGENT = "pi-remote";
const desiredTopic = formatTopic({ kind: "configDesired", siteId: SITE, agentId: AGENT });

describe("remote configuration of the real agent", () => {
  let tmp: ReturnType<typeof tempDir>;
  let sim: TcpSlaveSim;
  let broker: EmbeddedBroker;
  let sub: TestSubscriber;
  let agent: AgentProcess | undefined;
  let configFile: string;
  let base: AgentConfigInput;

  const reports = () =>
    sub.messages
      .filter((m) => m.message.kind === "configReported")
      .map((m) => m.message.payload as ConfigReported);
  const waitReport = (what: string, match: (r: ConfigReported) => boolean, timeoutMs = 20_000) =>
    sub
      .waitFor(() => reports().some(match), what, timeoutMs)
      .then(() => reports().filter(match).at(-1) as ConfigReported);
  const seqs = () =>
    sub.messages.flatMap((m) =>
      m.message.kind === "telemetry" ? m.message.payload.readings.map((r) => r.seq) : [],
    );

  /** The gateway's part: a desired configuration, retained, with its documentHash. */
  async function push(version: number, config: AgentConfigInput): Promise<string> {
    const parsed = agentConfigSchema.parse(config);
    const documentHash = await configDocumentHash(parsed);
    const payload = encodePayload("configDesired", {
      v: 1,
      agentId: AGENT,
      version,
      documentHash,
      config: parsed,
      issuedAt: Date.now(),
      issuedBy: "test",
    });
    await publishRaw(payload);
    return documentHash;
  }
  async function publishRaw(payload: Buffer | string) {
    const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    await client.publishAsync(desiredTopic, payload, { qos: 1, retain: true });
    await client.endAsync();
  }

  beforeAll(async () => {
    tmp = tempDir();
    sim = await startTcpSlave({
      slaves: [{ id: 1, channels: [0, 1, 2].map((r) => ({ register: r, baseC: 4 + r, noiseC: 0 })) }],
    });
    broker = await startEmbeddedBroker();
    sub = await subscribe(broker.url, `ct/v1/${SITE}/agent/${AGENT}/#`);
    base = {
      agent: { id: AGENT, siteId: SITE, dataDir: tmp.dir, remoteConfig: { graceMs: 3000 } },
      mqtt: { url: broker.url, reconnect: { minMs: 50, maxMs: 200 }, batch: { delayMs: 10 } },
      units: [{ id: "fridge-2", kind: "fridge" }],
      logging: { level: "info" },
      buses: [
        {
          id: "tcp-1",
          type: "modbus-tcp",
          host: "127.0.0.1",
          port: sim.port,
          timeoutMs: 300,
          probes: [
            { id: "fridge-2-p0", unit: "fridge-2", slaveId: 1, register: 0, scale: 0.1, intervalMs: 200 },
          ],
        },
      ],
    };
    configFile = join(tmp.dir, "agent.yaml");
    writeFileSync(configFile, stringify(base));
    agent = startAgentProcess(configFile);
  });

  afterAll(async () => {
    await agent?.kill9();
    await sub?.close();
    await broker?.close();
    await sim?.close();
    tmp?.remove();
  });

  it("reports what it runs at start: its own file", async () => {
    const r = await waitReport("the first report", () => true);
    expect(r).toMatchObject({ state: "applied", running: { source: "file", version: null } });
    expect(r.running.documentHash).toBe(await configDocumentHash(agentConfigSchema.parse(base)));
    const birth = sub.messages.find((m) => m.message.kind === "birth")?.message.payload as {
      configHash: string;
    };
    expect(r.running.configHash).toBe(birth.configHash);
  });

  it("applies a pushed configuration, confirms it with version and hash, and loses no reading", async () => {
    await sub.waitFor(() => seqs().length >= 3, "readings before the push");
    const pushed = structuredClone(base);
    const bus = pushed.buses[0] as { probes: Record<string, unknown>[] };
    bus.probes.push({
      id: "fridge-2-p1",
      unit: "fridge-2",
      slaveId: 1,
      register: 1,
      scale: 0.1,
      intervalMs: 200,
    });
    const hash = await push(1, pushed);
    const r = await waitReport("applied version 1", (x) => x.state === "applied" && x.running.version === 1);
    expect(r).toMatchObject({ desiredVersion: 1, running: { source: "remote", documentHash: hash } });
    // Its birth says so, and the new probe is polled.
    await sub.waitFor(
      (m) =>
        m.some(
          (x) =>
            x.message.kind === "birth" &&
            (x.message.payload as { configVersion?: number }).configVersion === 1,
        ),
      "a birth with configVersion 1",
    );
    await sub.waitFor(
      (m) =>
        m.some(
          (x) =>
            x.message.kind === "telemetry" &&
            x.message.payload.readings.some((y) => y.probeId === "fridge-2-p1"),
        ),
      "readings of the new probe",
    );
    // A trial report came first.
    expect(reports().some((x) => x.state === "trial" && x.desiredVersion === 1)).toBe(true);
  });

  it("refuses a bad configuration, naming every problem, and keeps running the last one", async () => {
    const bad = structuredClone(base) as Record<string, any>;
    bad.buses[0].probes[0].register = 70_000;
    bad.mqtt.password = "in-clear";
    // Not through encodePayload: the gateway would refuse to send it.
    await publishRaw(
      JSON.stringify({
        v: 1,
        agentId: AGENT,
        version: 2,
        documentHash: "0".repeat(64),
        config: bad,
        issuedAt: Date.now(),
      }),
    );
    const r = await waitReport("rejected version 2", (x) => x.state === "rejected" && x.desiredVersion === 2);
    expect(r.reason?.code).toBe("CT_CONFIG_REJECTED");
    expect(r.running.version).toBe(1);
    const paths = (r.issues ?? []).map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining(["config.buses[0].probes[0].register", "config.mqtt.password"]),
    );

    // Valid for the schema, but it moves the outbox: only the box's own file may.
    const moved = structuredClone(base) as Record<string, any>;
    moved.agent.dataDir = join(tmp.dir, "elsewhere");
    await push(3, moved as AgentConfigInput);
    const m = await waitReport("rejected version 3", (x) => x.state === "rejected" && x.desiredVersion === 3);
    expect(m.issues?.map((i) => i.path)).toEqual(
      expect.arrayContaining(["config.agent.dataDir", "config.outbox.path"]),
    );
    expect(m.running.version).toBe(1);
  });

  it("rolls back by itself a configuration that loses the broker, and delivers what it polled meanwhile", async () => {
    const lost = structuredClone(base) as Record<string, any>;
    lost.mqtt.url = `mqtt://127.0.0.1:${await freePort()}`;
    const from = agent?.logs.length ?? 0;
    await push(4, lost as AgentConfigInput);
    const r = await waitReport(
      "rolled back version 4",
      (x) => x.state === "rolled_back" && x.desiredVersion === 4,
    );
    expect(r.reason?.code).toBe("CT_CONFIG_ROLLBACK");
    expect(r.reason?.message).toMatch(/broker mqtt:\/\/127\.0\.0\.1:\d+ not reached within 3 s/);
    expect(r.running).toMatchObject({ source: "remote", version: 1 });
    // The retained desired message comes again on reconnect: it is not tried a second time.
    await agent?.waitForLog(
      (l) => l.msg === "mqtt connected",
      "reconnected after the rollback",
      20_000,
      from,
    );
    const trials = (agent?.logs ?? [])
      .slice(from)
      .filter((l) => l.msg === "applying configuration version on trial");
    expect(trials).toHaveLength(1);
  });

  it("rolls back a configuration under which a probe that answered stops answering", async () => {
    const wrong = structuredClone(base) as Record<string, any>;
    wrong.buses[0].probes[0].slaveId = 9; // nobody there: the TCP gateway answers exception 0x0B
    await push(5, wrong as AgentConfigInput);
    const r = await waitReport(
      "rolled back version 5",
      (x) => x.state === "rolled_back" && x.desiredVersion === 5,
    );
    expect(r.reason?.message).toContain("probe fridge-2-p0 answered before and did not answer within 3 s");
    expect(r.running.version).toBe(1);
  });

  it("rolls back when the agent dies during a trial and starts again", async () => {
    const lost = structuredClone(base) as Record<string, any>;
    lost.mqtt.url = `mqtt://127.0.0.1:${await freePort()}`;
    const from = agent?.logs.length ?? 0;
    await push(6, lost as AgentConfigInput);
    await agent?.waitForLog(
      (l) => l.msg === "applying configuration version on trial" && l.version === 6,
      "the trial",
      20_000,
      from,
    );
    await agent?.kill9();
    agent = startAgentProcess(configFile);
    const r = await waitReport(
      "rolled back version 6",
      (x) => x.state === "rolled_back" && x.desiredVersion === 6,
    );
    expect(r.reason?.message).toContain("restarted while configuration version 6 was on trial");
    expect(r.running).toMatchObject({ source: "remote", version: 1 });
    await sub.waitFor(() => reports().at(-1)?.desiredVersion === 6, "settled");
  });

  it("keeps the pushed configuration across a restart, and no sequence number is missing", async () => {
    const exit = await agent?.stop();
    expect(exit).toBe(0);
    const snap = readOutboxSnapshot(join(tmp.dir, "outbox.db"));
    expect(snap.depth).toBe(0);
    const received = new Set(seqs());
    const expected = Array.from({ length: snap.nextSeq - 1 }, (_, i) => i + 1);
    expect(expected.filter((s) => !received.has(s))).toEqual([]);
    const count = reports().length;
    agent = startAgentProcess(configFile);
    await sub.waitFor(() => reports().length > count, "a report after the restart");
    expect(reports().at(-1)).toMatchObject({ state: "applied", running: { source: "remote", version: 1 } });
    expect(agent.stderr()).toBe("");
  });
});
