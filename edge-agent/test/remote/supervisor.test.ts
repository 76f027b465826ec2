/**
 * The supervisor in process (acquisition faked at its seam, a real broker): a stored pushed
 * configuration that no longer validates never becomes a boot loop; the box's file runs and
 * the rollback is reported.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: tests mutate free-form configuration documents
import { agentConfigSchema, type ConfigReported } from "@coldtrace/protocol";
import { type EmbeddedBroker, startEmbeddedBroker } from "@coldtrace/testkit";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/index.ts";
import { documentHash, Supervisor, saveRemoteState, stateFile } from "../../src/remote/index.ts";
import { validConfig } from "../helpers/config.ts";
import { FakeAcquisition } from "../helpers/fake-acquisition.ts";
import { subscribe, type TestSubscriber } from "../helpers/subscriber.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("Supervisor", () => {
  let tmp: ReturnType<typeof tempDir>;
  let broker: EmbeddedBroker;
  let sub: TestSubscriber;
  beforeEach(async () => {
    tmp = tempDir();
    broker = await startEmbeddedBroker();
    sub = await subscribe(broker.url, "ct/v1/#");
  });
  afterEach(async () => {
    await sub.close();
    await broker.close();
    tmp.remove();
  });

  it("runs the box's file when the stored pushed configuration does not start, and reports it", async () => {
    const doc: Record<string, any> = validConfig();
    doc.agent.dataDir = tmp.dir;
    doc.agent.clock = { sync: "none" };
    doc.mqtt = { url: broker.url, batch: { delayMs: 5 } };
    const fileConfig = parseConfig(doc, "agent.yaml");
    const stored = structuredClone(doc);
    stored.buses[0].probes[0].register = -5; // valid once, refused now
    saveRemoteState(stateFile(tmp.dir), {
      current: { source: "remote", version: 4, documentHash: "a".repeat(64), document: stored },
      lastGood: { source: "remote", version: 4, documentHash: "a".repeat(64), document: stored },
      lastHandledVersion: 4,
      fileHash: documentHash(agentConfigSchema.parse(doc)),
    });
    const supervisor = new Supervisor({
      file: "agent.yaml",
      fileConfig,
      fileDocument: doc,
      makeAcquisition: () => new FakeAcquisition([{ probeId: "fridge-2-top", unitId: "fridge-2" }]),
      log: pino({ level: "silent" }),
    });
    await supervisor.start();
    await sub.waitFor((m) => m.some((x) => x.message.kind === "configReported"), "a report");
    const report = sub.messages.find((x) => x.message.kind === "configReported")?.message
      .payload as ConfigReported;
    expect(report).toMatchObject({
      state: "rolled_back",
      desiredVersion: 4,
      running: { source: "file", version: null },
      reason: { code: "CT_CONFIG_ROLLBACK" },
    });
    expect(report.reason?.message).toContain("did not start");
    await supervisor.stop();
  });
});
