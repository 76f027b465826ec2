/**
 * Runs a suite against each real broker: the embedded aedes broker (a fresh one per test), and
 * the machine's Mosquitto when it is there (skipped with the reason otherwise, failing under CI).
 * `embeddedOnly` adds tests that need a broker nobody else uses (retained state of its own).
 */
import { type EmbeddedBroker, mqttUrl, requireService, startEmbeddedBroker } from "@coldtrace/testkit";
import { afterEach, beforeEach, describe } from "vitest";

export async function onEachBroker(
  suite: (name: string, url: () => string) => void,
  embeddedOnly?: (url: () => string) => void,
): Promise<void> {
  let embedded: EmbeddedBroker | undefined;
  describe("embedded broker", () => {
    beforeEach(async () => {
      embedded = await startEmbeddedBroker();
    });
    afterEach(async () => {
      await embedded?.close();
    });
    suite("the embedded broker", () => embedded?.url ?? "");
    embeddedOnly?.(() => embedded?.url ?? "");
  });
  const mosquitto = await requireService("mosquitto");
  describe.skipIf(!mosquitto.available)(`Mosquitto ${mosquitto.reason}`, () => {
    suite("Mosquitto", () => mqttUrl());
  });
}
