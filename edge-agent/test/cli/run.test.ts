/**
 * `coldtrace-agent run` as a technician runs it by hand: the deployed bundle, no Node flags,
 * a clean environment. It polls the Modbus TCP simulator and publishes to the embedded broker
 * without a single warning on stderr (no DEP0169 from mqtt.js's url.parse), and its
 * `agent started` line names the agent once.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startTcpSlave, type TcpSlaveSim } from "@coldtrace/simulators";
import { type EmbeddedBroker, startEmbeddedBroker } from "@coldtrace/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type AgentProcess, buildBundle, startAgentProcess } from "../helpers/agent-process.ts";
import { subscribe, type TestSubscriber } from "../helpers/subscriber.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("coldtrace-agent run, by hand", () => {
  let tmp: ReturnType<typeof tempDir>;
  let sim: TcpSlaveSim;
  let broker: EmbeddedBroker;
  let sub: TestSubscriber;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    tmp = tempDir();
    buildBundle();
    sim = await startTcpSlave({ slaves: [{ id: 1, channels: [{ register: 0, baseC: 4.5, noiseC: 0 }] }] });
    broker = await startEmbeddedBroker();
    sub = await subscribe(broker.url, "ct/v1/#");
  });

  afterAll(async () => {
    await agent?.kill9();
    await sub?.close();
    await broker?.close();
    await sim?.close();
    tmp?.remove();
  });

  it("publishes with an empty stderr and one agentId in `agent started`", async () => {
    const file = join(tmp.dir, "agent.yaml");
    writeFileSync(
      file,
      stringify({
        agent: { id: "pi-by-hand", siteId: "store-12", dataDir: tmp.dir },
        mqtt: { url: broker.url, batch: { delayMs: 10 } },
        units: [{ id: "fridge-2", kind: "fridge" }],
        buses: [
          {
            id: "tcp-1",
            type: "modbus-tcp",
            host: "127.0.0.1",
            port: sim.port,
            probes: [
              { id: "fridge-2-top", unit: "fridge-2", slaveId: 1, register: 0, scale: 0.1, intervalMs: 200 },
            ],
          },
        ],
      }),
    );
    agent = startAgentProcess(file, { bundle: true, env: { PATH: process.env.PATH ?? "" } });
    await sub.waitFor(
      (m) => m.some((x) => x.message.kind === "telemetry" && x.message.payload.agentId === "pi-by-hand"),
      "telemetry from the agent",
    );
    await agent.waitForLog((l) => l.msg === "agent started", "agent started");
    expect(await agent.stop()).toBe(0);
    expect(agent.stderr()).toBe("");
    const started = agent.rawLines.find((l) => l.includes('"msg":"agent started"')) ?? "";
    expect(started.match(/"agentId"/g)).toHaveLength(1);
  });
});
