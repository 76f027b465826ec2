/** A small valid agent configuration document for tests to start from. */
// biome-ignore-all lint/suspicious/noExplicitAny: tests mutate free-form YAML documents
export function validConfig(): Record<string, any> {
  return {
    agent: { id: "pi-1", siteId: "store-12" },
    mqtt: { url: "mqtt://127.0.0.1:1883" },
    units: [
      { id: "fridge-2", kind: "fridge", actionLimits: { lowC: 2, highC: 8 } },
      { id: "box-7", kind: "transit_box" },
    ],
    buses: [
      {
        id: "tcp-1",
        type: "modbus-tcp",
        host: "127.0.0.1",
        probes: [
          { id: "fridge-2-top", unit: "fridge-2", slaveId: 1, register: 0 },
          { id: "box-7-core", unit: "box-7", slaveId: 1, register: 1, intervalMs: 60_000 },
        ],
      },
    ],
  };
}
