/** Config loading: every problem is named by file, path and expectation; defaults are sane. */
// biome-ignore-all lint/suspicious/noExplicitAny: tests mutate free-form YAML documents
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { configHash, defaultMaxReadings, loadConfig } from "../../src/config/index.ts";
import { validConfig } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";

type Mutate = (c: Record<string, any>) => void;

const cases: { name: string; mutate: Mutate; expected: string[] }[] = [
  {
    name: "missing agent id and a bad broker URL",
    mutate: (c) => {
      delete c.agent.id;
      c.mqtt.url = "gateway:1883";
    },
    expected: ["agent.id: expected string, got nothing", "mqtt.url: must be a broker URL"],
  },
  {
    name: "probe register out of range",
    mutate: (c) => {
      c.buses[0].probes[1].register = 70000;
    },
    expected: ["buses[0].probes[1].register:", "70000"],
  },
  {
    name: "probe names a unit that does not exist",
    mutate: (c) => {
      c.buses[0].probes[0].unit = "fridge-9";
    },
    expected: [
      "buses[0].probes[0].unit: unit fridge-9 is not in units[]",
      "units[0].id: unit fridge-2 has no probe",
    ],
  },
  {
    name: "duplicate unit and probe ids",
    mutate: (c) => {
      c.units.push({ id: "box-7", kind: "fridge" });
      c.buses[0].probes[1].id = "fridge-2-top";
    },
    expected: [
      "units[2].id: duplicate unit id box-7",
      "buses[0].probes[1].id: duplicate probe id fridge-2-top",
    ],
  },
  {
    name: "unknown keys and wrong types",
    mutate: (c) => {
      c.mqtt.keepalive = 30;
      c.units[0].kind = "cupboard";
      c.mqtt.inflightWindow = "many";
    },
    expected: [
      "mqtt: Unrecognized key",
      "units[0].kind:",
      'mqtt.inflightWindow: expected number, got "many"',
    ],
  },
  {
    name: "alarm output on an unknown bus",
    mutate: (c) => {
      c.localAlarm = { outputs: [{ busId: "rs485-9", slaveId: 10, coil: 0, units: ["fridge-3"] }] };
    },
    expected: [
      "localAlarm.outputs[0].busId: bus rs485-9 is not in buses[]",
      "localAlarm.outputs[0].units[0]: unit fridge-3",
    ],
  },
  {
    name: "password and passwordFile together",
    mutate: (c) => {
      c.mqtt.password = "x";
      c.mqtt.passwordFile = "/etc/pw";
    },
    expected: ["mqtt.passwordFile: give password or passwordFile, not both"],
  },
];

describe("loadConfig", () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir();
  });
  afterAll(() => tmp.remove());

  const write = (name: string, value: unknown) => {
    const file = join(tmp.dir, name);
    writeFileSync(file, typeof value === "string" ? value : stringify(value));
    return file;
  };

  it("applies defaults and sizes the outbox for 30 days of every probe", () => {
    const file = write("ok.yaml", validConfig());
    const cfg = loadConfig(file);
    expect(cfg.outbox.maxReadings).toBe(30 * 8640 + 30 * 1440);
    expect(cfg.outbox.maxReadings).toBe(defaultMaxReadings(cfg.buses, 30));
    expect(cfg.outbox).toMatchObject({ synchronous: "NORMAL", path: "/var/lib/coldtrace-agent/outbox.db" });
    expect(cfg.mqtt).toMatchObject({ keepaliveSec: 30, inflightWindow: 64, batch: { maxReadings: 500 } });
    expect(Object.isFrozen(cfg.mqtt)).toBe(true);
    expect(configHash(cfg)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("accepts the shipped example file", () => {
    const cfg = loadConfig(new URL("../../coldtrace-agent.example.yaml", import.meta.url).pathname);
    expect(cfg.agent.id).toBe("pi-fridge-3");
  });

  for (const c of cases) {
    it(`reports ${c.name} with file, path and expectation`, () => {
      const doc = validConfig();
      c.mutate(doc);
      const file = write(`${c.name.replaceAll(" ", "-")}.yaml`, doc);
      let error: unknown;
      try {
        loadConfig(file);
      } catch (err) {
        error = err;
      }
      expect(error).toEqual(expect.objectContaining({ code: "CT_CFG_INVALID" }));
      const message = (error as Error).message;
      expect(message).toContain(file);
      for (const e of c.expected) expect(message).toContain(e);
    });
  }

  it("lists every problem, not just the first", () => {
    const doc = validConfig();
    for (const c of cases.slice(0, 3)) c.mutate(doc);
    const file = write("many.yaml", doc);
    expect(() => loadConfig(file)).toThrow(expect.objectContaining({ code: "CT_CFG_INVALID" }));
    try {
      loadConfig(file);
    } catch (err) {
      expect((err as { context: { issues: unknown[] } }).context.issues.length).toBeGreaterThanOrEqual(4);
    }
  });

  it("names shape errors and cross-check errors in the same pass", () => {
    // Type errors (missing, wrong type, not in the enum) abort the plain refinements of every
    // object above them in zod; a value out of range does not.
    const doc = validConfig();
    delete doc.agent.id; // shape
    doc.mqtt.inflightWindow = "many"; // shape
    doc.buses[0].probes[1].type = "float128"; // shape, in the bus that also repeats a probe id
    doc.buses[0].probes[1].id = "fridge-2-top"; // cross-check: duplicate probe id
    doc.buses[0].probes[0].unit = "fridge-9"; // cross-check: unknown unit
    doc.units.push({ id: "box-7", kind: "fridge" }); // cross-check: duplicate unit id
    const file = write("mixed.yaml", doc);
    let message = "";
    try {
      loadConfig(file);
    } catch (err) {
      message = (err as Error).message;
    }
    for (const e of [
      "agent.id: expected string, got nothing",
      'mqtt.inflightWindow: expected number, got "many"',
      "buses[0].probes[1].type:",
      "buses[0].probes[1].id: duplicate probe id fridge-2-top",
      "buses[0].probes[0].unit: unit fridge-9 is not in units[]",
      "units[2].id: duplicate unit id box-7",
    ])
      expect(message).toContain(e);
  });

  it("does not trip over sections of the wrong type in cross-checks", () => {
    const doc = validConfig();
    doc.buses = "rs485-1";
    doc.units = [{ kind: "fridge" }, 7];
    doc.localAlarm = { outputs: [null, { busId: 3 }] };
    const file = write("wrong-types.yaml", doc);
    expect(() => loadConfig(file)).toThrow(expect.objectContaining({ code: "CT_CFG_INVALID" }));
  });

  it("names the line of every problem, from the YAML nodes' positions", () => {
    const file = write(
      "lines.yaml",
      [
        "agent:", //                                  1
        "  id: pi-1", //                              2
        "  siteId: store-12", //                      3
        "mqtt:", //                                   4
        "  url: mqtt://127.0.0.1:1883", //            5
        "  keepalive: 30", //                         6  unknown key
        "units:", //                                  7
        "  - { id: fridge-2, kind: cupboard }", //    8  bad enum
        "buses:", //                                  9
        "  - id: tcp-1", //                           10
        "    type: modbus-tcp", //                    11
        "    host: 127.0.0.1", //                     12
        "    probes:", //                             13
        "      - id: fridge-2-top", //                14
        "        unit: fridge-2", //                  15
        "        slaveId: 1", //                      16
        "        register: -1", //                    17 out of range
        "", //
      ].join("\n"),
    );
    let error: { message: string; context: { issues: { path: string; line?: number }[] } } | undefined;
    try {
      loadConfig(file);
    } catch (err) {
      error = err as typeof error;
    }
    expect(error?.message).toContain("line 6: mqtt: Unrecognized key");
    expect(error?.message).toContain("line 8: units[0].kind:");
    expect(error?.message).toContain("line 17: buses[0].probes[0].register:");
    // A missing key is placed at the object that should hold it.
    expect(error?.context.issues.map((i) => [i.path, i.line])).toEqual(
      expect.arrayContaining([
        ["mqtt", 6],
        ["units[0].kind", 8],
        ["buses[0].probes[0].register", 17],
      ]),
    );
  });

  it("reports unreadable files and broken YAML as CT_CFG_UNREADABLE", () => {
    expect(() => loadConfig(join(tmp.dir, "nope.yaml"))).toThrow(
      expect.objectContaining({ code: "CT_CFG_UNREADABLE", message: expect.stringContaining("ENOENT") }),
    );
    const file = write("broken.yaml", "agent:\n  id: [pi-1\nmqtt: {");
    expect(() => loadConfig(file)).toThrow(
      expect.objectContaining({ code: "CT_CFG_UNREADABLE", message: expect.stringContaining(file) }),
    );
  });
});
