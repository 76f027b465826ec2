import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ColdtraceError,
  decodeMessage,
  decodePayload,
  encodePayload,
  formatPath,
  schemaFor,
  type TopicKind,
} from "../src/index.ts";
import { samples } from "./fixtures.ts";

const kinds = Object.keys(samples) as TopicKind[];

function wireMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ColdtraceError);
    expect((err as ColdtraceError).code).toBe("CT_WIRE_INVALID");
    return (err as Error).message;
  }
  throw new Error("expected CT_WIRE_INVALID, nothing was thrown");
}

describe("codec round-trips", () => {
  it.each(kinds)("%s: encode → decode gives the same payload", (kind) => {
    const { topic, payload } = samples[kind];
    const bytes = encodePayload(kind, payload as never);
    const message = decodeMessage(topic, bytes);
    expect(message.kind).toBe(kind);
    expect(message.payload).toEqual(payload);
    expect(JSON.parse(bytes.toString("utf8"))).toEqual(payload);
  });

  it("fills defaults: backfill false, calibration offset 0", () => {
    const t = structuredClone(samples.telemetry.payload) as { readings: Record<string, unknown>[] };
    delete t.readings[0]!.backfill;
    const msg = decodeMessage(samples.telemetry.topic, JSON.stringify(t));
    expect(msg.kind === "telemetry" && msg.payload.readings[0]!.backfill).toBe(false);
  });
});

describe("codec rejects malformed payloads, naming the bad field", () => {
  const topic = samples.telemetry.topic;
  const withReading = (patch: Record<string, unknown>) => {
    const t = structuredClone(samples.telemetry.payload) as { readings: Record<string, unknown>[] };
    Object.assign(t.readings[1]!, patch);
    return JSON.stringify(t);
  };

  it("a temperature that is not a number", () => {
    const msg = wireMessage(() => decodeMessage(topic, withReading({ tempC: "n/a", quality: "ok" })));
    expect(msg).toContain(`${topic}: readings[1].tempC: expected number, got "n/a"`);
  });

  it("an unknown quality flag", () => {
    expect(wireMessage(() => decodeMessage(topic, withReading({ quality: "great" })))).toMatch(
      /readings\[1\]\.quality: .*got "great"/,
    );
  });

  it("quality ok without a value", () => {
    expect(wireMessage(() => decodeMessage(topic, withReading({ tempC: null, quality: "ok" })))).toContain(
      "readings[1].tempC: must be a number when quality is ok",
    );
  });

  it("event time in seconds instead of milliseconds", () => {
    expect(wireMessage(() => decodeMessage(topic, withReading({ observedAt: 1_764_000_000 })))).toContain(
      "readings[1].observedAt: must be a UTC epoch in milliseconds after 2000-01-01, got 1764000000",
    );
  });

  it("a sequence number of zero and an unknown field, both reported", () => {
    const msg = wireMessage(() => decodeMessage(topic, withReading({ seq: 0, colour: "red" })));
    expect(msg).toContain("readings[1].seq: must be ≥ 1, got 0");
    expect(msg).toContain('readings[1]: Unrecognized key: "colour"');
  });

  it("an agent id that disagrees with the topic", () => {
    const t = { ...samples.telemetry.payload, agentId: "someone-else" };
    expect(wireMessage(() => decodeMessage(topic, JSON.stringify(t)))).toContain(
      'agentId: does not match the topic ("pi-fridge-3"), got "someone-else"',
    );
  });

  it("not JSON, not UTF-8, too large", () => {
    expect(wireMessage(() => decodeMessage(topic, "{oops"))).toContain("payload is not JSON");
    expect(wireMessage(() => decodeMessage(topic, new Uint8Array([0xff, 0xfe, 0x7b])))).toContain(
      "not valid UTF-8",
    );
    expect(wireMessage(() => decodeMessage(topic, "x".repeat(1_048_577)))).toContain("more than 1048576");
  });

  it("a movement missing the unit its kind needs", () => {
    const m = { ...samples.movement.payload, kind: "receive" };
    expect(wireMessage(() => decodePayload("movement", JSON.stringify(m)))).toContain(
      "fromUnitId: must be absent for a receive movement",
    );
    const d = { ...samples.movement.payload, kind: "dispense", toUnitId: undefined, fromUnitId: undefined };
    expect(wireMessage(() => decodePayload("movement", JSON.stringify(d)))).toContain(
      "fromUnitId: is required for a dispense movement",
    );
  });

  it("refuses to encode an invalid payload", () => {
    expect(() =>
      encodePayload("gatewayState", { v: 1, gatewayId: "gw", state: "sleepy", at: 0 } as never),
    ).toThrow(expect.objectContaining({ code: "CT_WIRE_INVALID" }));
  });

  it("formats paths with brackets for indexes", () => {
    expect(formatPath(["buses", 0, "probes", 2, "register"])).toBe("buses[0].probes[2].register");
  });
});

describe("fuzz: bad payloads only ever throw the contract's validation error", () => {
  const topics = kinds.map((k) => samples[k].topic);
  const expectOnlyWireErrors = (topic: string, payload: Uint8Array | string) => {
    try {
      decodeMessage(topic, payload);
    } catch (err) {
      expect(err).toBeInstanceOf(ColdtraceError);
      expect(["CT_WIRE_INVALID", "CT_TOPIC_INVALID"]).toContain((err as ColdtraceError).code);
    }
  };

  it("random bytes", () => {
    fc.assert(
      fc.property(fc.constantFrom(...topics), fc.uint8Array({ maxLength: 300 }), expectOnlyWireErrors),
      { numRuns: 500 },
    );
  });

  it("random JSON values", () => {
    fc.assert(
      fc.property(fc.constantFrom(...topics), fc.jsonValue(), (topic, value) =>
        expectOnlyWireErrors(topic, JSON.stringify(value) ?? "null"),
      ),
      { numRuns: 500 },
    );
  });

  it("valid payloads with one field replaced by anything", () => {
    fc.assert(
      fc.property(fc.constantFrom(...kinds), fc.anything(), fc.nat(), (kind, junk, pick) => {
        const payload = structuredClone(samples[kind].payload);
        const keys = Object.keys(payload);
        const key = keys[pick % keys.length]!;
        (payload as Record<string, unknown>)[key] = junk;
        let text: string | undefined;
        try {
          text = JSON.stringify(payload);
        } catch {
          return; // BigInt and friends cannot travel as JSON at all
        }
        expectOnlyWireErrors(samples[kind].topic, text ?? "null");
      }),
      { numRuns: 1000 },
    );
  });

  it("random topics", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.constantFrom("ct", "v1", "agent", "events", "lot", "_gateway", "+", "#", ""),
            fc.string(),
          ),
          {
            maxLength: 8,
          },
        ),
        (levels) => expectOnlyWireErrors(levels.join("/"), "{}"),
      ),
      { numRuns: 500 },
    );
  });

  it("every kind has a schema", () => {
    expect(Object.keys(schemaFor).sort()).toEqual([...kinds].sort());
  });
});

describe("Message type", () => {
  it("narrows the topic by kind, including kinds that share a topic shape", () => {
    const msg = decodeMessage(samples.birth.topic, JSON.stringify(samples.birth.payload));
    if (msg.kind !== "birth") throw new Error(`expected birth, got ${msg.kind}`);
    // Type-level: this line only compiles while TopicOf<"birth"> keeps siteId and agentId.
    const where: { siteId: string; agentId: string } = msg.topic;
    expect(where).toEqual({ kind: "birth", siteId: "store-12", agentId: "pi-fridge-3" });
  });
});
