/** Register decoding: every type × word order, sentinels, ranges, blocks, and never-throw. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { busesSchema, type RegisterType, type WordOrder } from "../../src/config/buses.ts";
import {
  createStaleDetector,
  decodeAllOrders,
  decodeProbeValue,
  decodeRaw,
  encodeRaw,
  needsOrderHint,
  orderHint,
  planBlocks,
  plausibleOrders,
  scaleToTemp,
} from "../../src/decode/index.ts";

const bytes = (...b: number[]) => Uint8Array.from(b);

describe("decodeRaw", () => {
  // Wire bytes for each order of the same value; A..D are the big-endian bytes.
  const table: { type: RegisterType; order: WordOrder; wire: number[]; value: number }[] = [
    // int16 -12.3 °C * 10 = -123 = 0xFF85
    { type: "int16", order: "ABCD", wire: [0xff, 0x85], value: -123 },
    { type: "int16", order: "CDAB", wire: [0xff, 0x85], value: -123 },
    { type: "int16", order: "BADC", wire: [0x85, 0xff], value: -123 },
    { type: "int16", order: "DCBA", wire: [0x85, 0xff], value: -123 },
    { type: "uint16", order: "ABCD", wire: [0xff, 0x85], value: 65413 },
    { type: "uint16", order: "CDAB", wire: [0xff, 0x85], value: 65413 },
    { type: "uint16", order: "BADC", wire: [0x85, 0xff], value: 65413 },
    { type: "uint16", order: "DCBA", wire: [0x85, 0xff], value: 65413 },
    // int32 -100000 = 0xFFFE7960 → A=FF B=FE C=79 D=60
    { type: "int32", order: "ABCD", wire: [0xff, 0xfe, 0x79, 0x60], value: -100000 },
    { type: "int32", order: "CDAB", wire: [0x79, 0x60, 0xff, 0xfe], value: -100000 },
    { type: "int32", order: "BADC", wire: [0xfe, 0xff, 0x60, 0x79], value: -100000 },
    { type: "int32", order: "DCBA", wire: [0x60, 0x79, 0xfe, 0xff], value: -100000 },
    // uint32 0x12345678 = 305419896
    { type: "uint32", order: "ABCD", wire: [0x12, 0x34, 0x56, 0x78], value: 305419896 },
    { type: "uint32", order: "CDAB", wire: [0x56, 0x78, 0x12, 0x34], value: 305419896 },
    { type: "uint32", order: "BADC", wire: [0x34, 0x12, 0x78, 0x56], value: 305419896 },
    { type: "uint32", order: "DCBA", wire: [0x78, 0x56, 0x34, 0x12], value: 305419896 },
    // float32 4.5 = 0x40900000
    { type: "float32", order: "ABCD", wire: [0x40, 0x90, 0x00, 0x00], value: 4.5 },
    { type: "float32", order: "CDAB", wire: [0x00, 0x00, 0x40, 0x90], value: 4.5 },
    { type: "float32", order: "BADC", wire: [0x90, 0x40, 0x00, 0x00], value: 4.5 },
    { type: "float32", order: "DCBA", wire: [0x00, 0x00, 0x90, 0x40], value: 4.5 },
    // float32 -18.25 = 0xC1920000
    { type: "float32", order: "CDAB", wire: [0x00, 0x00, 0xc1, 0x92], value: -18.25 },
  ];
  it.each(table)("$type $order $wire → $value", ({ type, order, wire, value }) => {
    expect(decodeRaw(Uint8Array.from(wire), 0, type, order).value).toBe(value);
    expect(Array.from(encodeRaw(value, type, order))).toEqual(wire);
  });

  it("decodes at a byte offset inside a block", () => {
    expect(decodeRaw(bytes(0, 0, 0x01, 0xc2), 2, "int16", "ABCD").value).toBe(450);
  });

  it("rejects too-short input with CT_PROBE_DECODE", () => {
    expect(() => decodeRaw(bytes(0x01, 0x02, 0x03), 0, "float32", "ABCD")).toThrow(
      expect.objectContaining({ code: "CT_PROBE_DECODE" }),
    );
    expect(() => decodeRaw(bytes(0x01, 0x02), 1, "int16", "ABCD")).toThrow(
      expect.objectContaining({ code: "CT_PROBE_DECODE" }),
    );
  });

  it("shows a pair in all four orders", () => {
    const all = decodeAllOrders(encodeRaw(4.5, "float32", "CDAB"));
    expect(all.find((r) => r.order === "CDAB")?.float32).toBe(4.5);
    expect(all.find((r) => r.order === "ABCD")?.float32).not.toBe(4.5);
    expect(all.map((r) => r.order)).toEqual(["ABCD", "CDAB", "BADC", "DCBA"]);
  });
});

describe("decodeProbeValue", () => {
  const probe = { type: "int16" as const, wordOrder: "ABCD" as const, scale: 0.1, offset: 0 };

  it("applies scale, offset and calibration", () => {
    expect(decodeProbeValue(encodeRaw(46, "int16", "ABCD"), 0, probe)).toEqual({
      tempC: 4.6,
      quality: "ok",
      raw: 46,
    });
    expect(
      decodeProbeValue(encodeRaw(462, "int16", "ABCD"), 0, {
        ...probe,
        scale: 0.01,
        offset: 1,
        calibration: { offsetC: -0.3 },
      }).tempC,
    ).toBe(5.32);
  });

  it("maps default sentinels to sensor_fault", () => {
    expect(decodeProbeValue(bytes(0x80, 0x00), 0, probe)).toMatchObject({
      quality: "sensor_fault",
      tempC: null,
    });
    expect(decodeProbeValue(bytes(0x7f, 0xff), 0, probe)).toMatchObject({
      quality: "sensor_fault",
      tempC: null,
    });
    expect(decodeProbeValue(bytes(0x80, 0, 0, 0), 0, { ...probe, type: "int32" })).toMatchObject({
      quality: "sensor_fault",
    });
  });

  it("uses configured sentinels instead of the defaults", () => {
    const p = { ...probe, sentinels: [0xfc18] }; // -1000
    expect(decodeProbeValue(bytes(0xfc, 0x18), 0, p).quality).toBe("sensor_fault");
    // 0x8000 is no longer a sentinel: -3276.8 °C decodes, and is below absolute zero.
    expect(decodeProbeValue(bytes(0x80, 0x00), 0, p)).toMatchObject({ quality: "out_of_range", raw: -32768 });
    expect(decodeProbeValue(bytes(0x7f, 0xff), 0, p)).toMatchObject({ quality: "out_of_range", raw: 32767 });
    expect(decodeProbeValue(bytes(0x00, 0x2e), 0, p)).toMatchObject({ quality: "ok", tempC: 4.6 });
  });

  it("maps NaN and infinity to sensor_fault", () => {
    const f = { ...probe, type: "float32" as const, scale: 1 };
    expect(decodeProbeValue(bytes(0x7f, 0xc0, 0, 0), 0, f).quality).toBe("sensor_fault");
    expect(decodeProbeValue(bytes(0x7f, 0x80, 0, 0), 0, f).quality).toBe("sensor_fault");
  });

  it("never takes a float no probe can report for a temperature, and names the order that fits", () => {
    const f = { ...probe, type: "float32" as const, scale: 1, offset: 0, calibration: { offsetC: 0.3 } };
    // 4.62 °C sent word-swapped (CDAB) and read as BADC is 2.08e-32: a normal float32, not
    // subnormal, that would round to 0 °C (+ the calibration offset: a believable 0.3 °C).
    const wire = encodeRaw(4.62, "float32", "CDAB");
    const wrong = decodeProbeValue(wire, 0, { ...f, wordOrder: "BADC" });
    expect(wrong).toMatchObject({ quality: "out_of_range", tempC: null, implausible: true });
    expect(wrong.raw).toBeCloseTo(2.08e-32, 33);
    expect(plausibleOrders(wire, 0, { ...f, wordOrder: "BADC" })).toEqual([{ order: "CDAB", tempC: 4.92 }]);
    for (const tiny of [-3.7e-32, 2.1e-32, 1e-40, -5e-7])
      expect(decodeProbeValue(encodeRaw(tiny, "float32", "ABCD"), 0, f)).toMatchObject({
        quality: "out_of_range",
        tempC: null,
        implausible: true,
      });
    // Zero is a temperature; so is anything a probe can resolve.
    expect(decodeProbeValue(encodeRaw(0, "float32", "ABCD"), 0, f)).toMatchObject({
      quality: "ok",
      tempC: 0.3,
    });
    expect(decodeProbeValue(encodeRaw(0.001, "float32", "ABCD"), 0, f).quality).toBe("ok");
    expect(needsOrderHint(f, wrong)).toBe(true);
    expect(orderHint([])).toMatch(/no word order/);
  });

  it("flags values outside the probe's range as out_of_range, keeping the value", () => {
    const p = { ...probe, range: { minC: -40, maxC: 60 } };
    expect(decodeProbeValue(encodeRaw(612, "int16", "ABCD"), 0, p)).toEqual({
      tempC: 61.2,
      quality: "out_of_range",
      raw: 612,
    });
  });

  it("flags values outside the contract's physical bounds as out_of_range without a value", () => {
    expect(scaleToTemp(-3000, { scale: 1, offset: 0 })).toEqual({
      tempC: null,
      quality: "out_of_range",
      raw: -3000,
    });
  });

  it("never throws on random bytes except CT_PROBE_DECODE", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 12 }),
        fc.integer({ min: -2, max: 12 }),
        fc.constantFrom<RegisterType>("int16", "uint16", "int32", "uint32", "float32"),
        fc.constantFrom<WordOrder>("ABCD", "CDAB", "BADC", "DCBA"),
        fc.double(),
        fc.double(),
        (b, at, type, wordOrder, scale, offset) => {
          try {
            const r = decodeProbeValue(b, at, { type, wordOrder, scale, offset });
            expect(["ok", "sensor_fault", "out_of_range"]).toContain(r.quality);
            if (r.tempC !== null) expect(Number.isFinite(r.tempC)).toBe(true);
          } catch (err) {
            expect(err).toMatchObject({ code: "CT_PROBE_DECODE" });
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("planBlocks", () => {
  const p = (id: string, slaveId: number, register: number, type: RegisterType = "int16", fn: 3 | 4 = 3) => ({
    id,
    slaveId,
    register,
    type,
    function: fn,
  });

  it("merges adjacent registers on the same slave and function", () => {
    const blocks = planBlocks([
      p("a", 1, 0),
      p("b", 1, 1, "float32"),
      p("c", 1, 3),
      p("d", 2, 4),
      p("e", 1, 4, "int16", 4),
    ]);
    expect(blocks.map((b) => [b.slaveId, b.function, b.start, b.count, b.probes.map((x) => x.id)])).toEqual([
      [1, 3, 0, 4, ["a", "b", "c"]],
      [1, 4, 4, 1, ["e"]],
      [2, 3, 4, 1, ["d"]],
    ]);
  });

  it("splits at gaps and at 125 registers", () => {
    expect(planBlocks([p("a", 1, 0), p("b", 1, 5)]).length).toBe(2);
    expect(planBlocks([p("a", 1, 0), p("b", 1, 5)], 4).length).toBe(1);
    const many = Array.from({ length: 130 }, (_, i) => p(`p${i}`, 1, i));
    const blocks = planBlocks(many);
    expect(blocks.map((b) => b.count)).toEqual([125, 5]);
  });
});

describe("stale detector", () => {
  it("flags a value unchanged for longer than the limit", () => {
    const d = createStaleDetector(1000);
    expect(d.observe(4.5, 0)).toBe(false);
    expect(d.observe(4.5, 1000)).toBe(false);
    expect(d.observe(4.5, 1001)).toBe(true);
    expect(d.observe(4.6, 1002)).toBe(false);
  });
});

describe("busesSchema", () => {
  it("fills defaults", () => {
    const [bus] = busesSchema.parse([
      {
        id: "rs485-1",
        type: "modbus-rtu",
        port: "/dev/ttyUSB0",
        probes: [{ id: "p1", unit: "fridge-1", slaveId: 1, register: 0 }],
      },
    ]);
    expect(bus).toMatchObject({
      baudRate: 9600,
      parity: "none",
      dataBits: 8,
      stopBits: 1,
      timeoutMs: 1000,
      retries: 1,
      probes: [{ intervalMs: 10_000, function: 3, type: "int16", wordOrder: "ABCD", scale: 1, offset: 0 }],
    });
    const [tcp] = busesSchema.parse([
      {
        id: "tcp",
        type: "modbus-tcp",
        host: "10.0.0.5",
        probes: [{ id: "p1", unit: "u", slaveId: 1, register: 0 }],
      },
    ]);
    expect(tcp).toMatchObject({ port: 502 });
  });

  it("reports every problem with its path", () => {
    const r = busesSchema.safeParse([
      {
        id: "a",
        type: "modbus-rtu",
        port: "/dev/x",
        probes: [{ id: "p1", unit: "u", slaveId: 0, register: 0 }],
      },
      {
        id: "a",
        type: "serial-ascii",
        port: "/dev/x",
        lineRegex: "^(?<v>\\d+)$",
        probes: [{ id: "p1", unit: "u", calibration: { dueDate: "2026-13-45" } }],
      },
    ]);
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join("."));
    expect(paths).toEqual(
      expect.arrayContaining(["0.probes.0.slaveId", "1.lineRegex", "1.probes.0.calibration.dueDate"]),
    );
  });

  it("checks ids and ports across buses", () => {
    const probe = { id: "p1", unit: "u", slaveId: 1, register: 0 };
    const r = busesSchema.safeParse([
      { id: "a", type: "modbus-rtu", port: "/dev/x", probes: [probe] },
      { id: "a", type: "modbus-rtu", port: "/dev/x", probes: [probe] },
    ]);
    expect(r.error!.issues.map((i) => i.path.join("."))).toEqual(
      expect.arrayContaining(["1.id", "1.port", "1.probes.0.id"]),
    );
  });
});
