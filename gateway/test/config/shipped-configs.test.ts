/**
 * The example configuration loads as written. The docker-compose stack's configurations
 * (deploy/gateway/) are checked against the stack in deploy/test/compose.test.ts.
 */
import { describe, expect, it } from "vitest";
import { loadGatewayConfig } from "../../src/config/load.ts";

describe("shipped gateway configurations", () => {
  it.each([["gateway/coldtrace-gateway.example.yaml", "../../coldtrace-gateway.example.yaml"]])(
    "%s is valid",
    (_name, rel) => {
      const cfg = loadGatewayConfig(new URL(rel, import.meta.url).pathname);
      expect(cfg.broker.mode).toBe("embedded");
      expect(cfg.storage.records.backend).toBe("sqlite");
    },
  );
});
