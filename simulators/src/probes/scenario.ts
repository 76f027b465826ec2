/**
 * Scenario files: what a simulated bus of probes does over time. YAML, validated with zod so a
 * technician's typo is reported with its path. Time in a scenario is *scenario time*: wall
 * time since start × `speed` (speed 60 plays one hour per minute).
 *
 *   scenario ─ slaves[] ─ channels[] (register, type, word order, scale, baseC, noiseC)
 *            ├ ascii    ─ channels[] (name, baseC, noiseC), line interval
 *            └ events[] door-open · compressor-failure · power-cut · not-answering ·
 *                       sensor-fault · corrupt-frames · turnaround   (optionally per slave/channel)
 */
import { readFile } from "node:fs/promises";
import { ColdtraceError } from "@coldtrace/protocol";
import { parse } from "yaml";
import { z } from "zod";

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration: milliseconds as a number, or "250ms", "30s", "10m", "2h". */
export const duration = z.union([
  z.number().nonnegative(),
  z
    .string()
    .regex(/^\d+(\.\d+)?(ms|s|m|h)$/, 'must be a number of ms or like "30s", "10m", "2h"')
    .transform((s) => {
      const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s)!;
      return Number(m[1]) * units[m[2]!]!;
    }),
]);

const target = {
  /** Only this slave id (Modbus) — all slaves when absent. */
  slaveId: z.number().int().min(1).max(247).optional(),
  /** Only this channel (register number for Modbus, name for ASCII) — all when absent. */
  channel: z.union([z.number().int(), z.string()]).optional(),
};
const window = { at: duration.default(0), duration: duration.optional(), ...target };

export const scenarioEvent = z.discriminatedUnion("kind", [
  /** Door opened: temperature rises by riseC over the first minute, decays for 5 min after closing. */
  z.object({ kind: z.literal("door-open"), ...window, riseC: z.number().default(4) }).strict(),
  /** Compressor stops: temperature ramps up at rampCPerHour until maxC. */
  z
    .object({
      kind: z.literal("compressor-failure"),
      ...window,
      rampCPerHour: z.number().positive().default(6),
      maxC: z.number().default(25),
    })
    .strict(),
  /** Mains lost: every slave (or the ASCII probe) stops answering. */
  z.object({ kind: z.literal("power-cut"), ...window }).strict(),
  /** One slave stops answering (dead transceiver, wrong address). */
  z.object({ kind: z.literal("not-answering"), ...window }).strict(),
  /** The probe reports its fault sentinel (open/short circuit); ASCII prints "ERR". */
  z.object({ kind: z.literal("sensor-fault"), ...window }).strict(),
  /** Replies get a bad CRC (RTU), a garbled PDU (TCP) or garbage lines (ASCII). */
  z
    .object({
      kind: z.literal("corrupt-frames"),
      ...window,
      probability: z.number().min(0).max(1).default(1),
    })
    .strict(),
  /** Extra turnaround delay before each reply. */
  z.object({ kind: z.literal("turnaround"), ...window, delayMs: z.number().nonnegative() }).strict(),
]);
export type ScenarioEvent = z.output<typeof scenarioEvent>;

export const registerType = z.enum(["int16", "uint16", "int32", "uint32", "float32"]);
export type RegisterType = z.infer<typeof registerType>;
export const wordOrder = z.enum(["ABCD", "CDAB", "BADC", "DCBA"]);
export type WordOrder = z.infer<typeof wordOrder>;

const temperature = {
  baseC: z.number().default(5),
  /** Uniform noise amplitude ± noiseC. */
  noiseC: z.number().nonnegative().default(0.1),
};

export const modbusChannel = z
  .object({
    register: z.number().int().min(0).max(65_534),
    /** 3: the holding register table, 4: the input register table. */
    function: z.union([z.literal(3), z.literal(4)]).default(3),
    type: registerType.default("int16"),
    wordOrder: wordOrder.default("ABCD"),
    /** raw = tempC / scale (scale 0.1 → 4.62 °C is 46). */
    scale: z
      .number()
      .refine((s) => s !== 0, "must not be 0")
      .default(0.1),
    offset: z.number().default(0),
    /** Raw bit pattern sent during a sensor fault. */
    sentinel: z.number().int().min(0).max(0xffff_ffff).default(0x8000),
    ...temperature,
  })
  .strict();
export type ModbusChannel = z.output<typeof modbusChannel>;

export const slaveSchema = z
  .object({
    id: z.number().int().min(1).max(247),
    /** Size of each table (coils, discrete inputs, holding, input registers); beyond it → exception 02. */
    size: z.number().int().min(1).max(65_536).default(1000),
    channels: z.array(modbusChannel).default([]),
  })
  .strict();
export type SlaveSpec = z.output<typeof slaveSchema>;

export const asciiChannel = z.object({ name: z.string().regex(/^[A-Za-z0-9_]+$/), ...temperature }).strict();

export const scenarioSchema = z
  .object({
    name: z.string().default("unnamed"),
    description: z.string().optional(),
    /** Scenario seconds per wall second. */
    speed: z.number().positive().default(1),
    seed: z.number().int().default(1),
    /** Delay between the end of a request and the start of the reply (Modbus RTU slaves: a few ms). */
    turnaroundMs: z.number().nonnegative().default(0),
    slaves: z.array(slaveSchema).default([]),
    ascii: z
      .object({
        intervalMs: z.number().int().positive().default(1000),
        channels: z.array(asciiChannel).min(1),
      })
      .strict()
      .optional(),
    events: z.array(scenarioEvent).default([]),
  })
  .strict();
export type Scenario = z.output<typeof scenarioSchema>;
export type ScenarioInput = z.input<typeof scenarioSchema>;

export function parseScenario(input: unknown, source = "scenario"): Scenario {
  const r = scenarioSchema.safeParse(input);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ColdtraceError("CT_CFG_INVALID", `${source}: ${issues.join("; ")}`, { source, issues });
  }
  return r.data;
}

export async function loadScenario(file: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ColdtraceError("CT_CFG_UNREADABLE", `${file}: cannot read`, { file }, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new ColdtraceError("CT_CFG_UNREADABLE", `${file}: not valid YAML`, { file }, { cause: err });
  }
  return parseScenario(doc, file);
}

/** The simulator's notion of time; tests pass a hand-driven one. */
export interface SimClock {
  now(): number;
}
export const wallClock: SimClock = { now: () => Date.now() };

/** Small deterministic PRNG (mulberry32) so a scenario with a seed replays the same noise. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Plays a scenario: answers "what is true at scenario time t" for a slave/channel. */
export interface ScenarioPlayer {
  /** Scenario milliseconds elapsed. */
  elapsedMs(): number;
  tempC(
    channel: { baseC: number; noiseC: number },
    slaveId: number | undefined,
    channelKey: number | string,
  ): number;
  active(
    kind: ScenarioEvent["kind"],
    slaveId?: number,
    channelKey?: number | string,
  ): ScenarioEvent | undefined;
}

export function playScenario(scenario: Scenario, clock: SimClock = wallClock): ScenarioPlayer {
  const startedAt = clock.now();
  const random = prng(scenario.seed);
  const elapsedMs = () => (clock.now() - startedAt) * scenario.speed;
  const applies = (e: ScenarioEvent, slaveId?: number, channelKey?: number | string) =>
    (e.slaveId === undefined || slaveId === undefined || e.slaveId === slaveId) &&
    (e.channel === undefined || channelKey === undefined || e.channel === channelKey);
  const within = (e: ScenarioEvent, t: number) =>
    t >= e.at && (e.duration === undefined || t < e.at + e.duration);
  return {
    elapsedMs,
    active(kind, slaveId, channelKey) {
      const t = elapsedMs();
      return scenario.events.find((e) => e.kind === kind && applies(e, slaveId, channelKey) && within(e, t));
    },
    tempC(channel, slaveId, channelKey) {
      const t = elapsedMs();
      let c = channel.baseC + (random() * 2 - 1) * channel.noiseC;
      for (const e of scenario.events) {
        if (!applies(e, slaveId, channelKey) || t < e.at) continue;
        if (e.kind === "door-open") {
          const open = e.duration ?? 60_000;
          const rise = Math.min(1, (t - e.at) / 60_000) * e.riseC;
          if (t < e.at + open) c += rise;
          else {
            const peak = Math.min(1, open / 60_000) * e.riseC;
            c += Math.max(0, peak * (1 - (t - e.at - open) / 300_000));
          }
        } else if (e.kind === "compressor-failure" && within(e, t)) {
          c = Math.min(Math.max(c, e.maxC), c + (e.rampCPerHour * (t - e.at)) / 3_600_000);
        }
      }
      return Math.round(c * 1000) / 1000;
    },
  };
}
