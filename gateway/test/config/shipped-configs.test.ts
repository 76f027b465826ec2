/** The configuration files we ship (example, docker-compose) load as written. */
import { describe, expect, it } from "vitest";
import { loadGatewayConfig } from "../../src/config/load.ts";

describe("shipped gateway configurations", () => {
  it.each([
    ["gateway/coldtrace-gateway.example.yaml", "../../coldtrace-gateway.example.yaml"],
    ["deploy/gateway.yaml (docker-compose)", "../../../deploy/gateway.yaml"],
  ])("%s is valid", (_name, rel) => {
    const cfg = loadGatewayConfig(new URL(rel, import.meta.url).pathname);
    expect(cfg.broker.mode).toBe("embedded");
    expect(cfg.storage.records.backend).toBe("sqlite");
  });
});
