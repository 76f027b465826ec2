/**
 * A serial ASCII probe: prints one line per channel at an interval, e.g. `T1=+04.62C\r\n`, on
 * a serial port (one end of a PTY pair in tests). Faults: silent (power cut), `ERR` lines
 * (sensor fault), garbage bytes instead of lines (corrupt-frames).
 */
import { SerialPort } from "serialport";
import { playScenario, type ScenarioInput, type SimClock, scenarioSchema, wallClock } from "./scenario.ts";

export interface AsciiProbeOptions {
  path: string;
  baudRate?: number;
  /** Defaults to one channel T1 at 5 °C when the scenario has no `ascii` section. */
  scenario?: ScenarioInput;
  intervalMs?: number;
  clock?: SimClock;
}

export interface AsciiFaults {
  silent?: boolean;
  sensorFault?: boolean;
  garbage?: boolean;
}

export interface AsciiProbeSim {
  /** Lines written so far (valid or not). */
  readonly stats: { lines: number; garbage: number };
  setFault(faults: AsciiFaults): void;
  setTemp(channel: string, tempC: number | null): void;
  /** Writes one round of lines now (tests call this instead of waiting for the interval). */
  tick(): Promise<void>;
  /** Writes raw bytes to the line. */
  writeRaw(bytes: string | Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export function formatAsciiLine(channel: string, tempC: number): string {
  const sign = tempC < 0 ? "-" : "+";
  return `${channel}=${sign}${Math.abs(tempC).toFixed(2).padStart(5, "0")}C\r\n`;
}

export async function startAsciiProbe(options: AsciiProbeOptions): Promise<AsciiProbeSim> {
  const scenario = scenarioSchema.parse(options.scenario ?? {});
  const ascii = scenario.ascii ?? { intervalMs: 1000, channels: [{ name: "T1", baseC: 5, noiseC: 0.1 }] };
  const player = playScenario(scenario, options.clock ?? wallClock);
  const port = new SerialPort({ path: options.path, baudRate: options.baudRate ?? 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  port.on("error", () => {});
  const stats = { lines: 0, garbage: 0 };
  let faults: AsciiFaults = {};
  const fixed = new Map<string, number | null>();

  const write = (data: string | Uint8Array) =>
    new Promise<void>((resolve) => port.write(Buffer.from(data), () => port.drain(() => resolve())));

  async function tick(): Promise<void> {
    if (faults.silent || player.active("power-cut") || player.active("not-answering")) return;
    let out = "";
    for (const ch of ascii.channels) {
      stats.lines++;
      const corrupt = player.active("corrupt-frames", undefined, ch.name);
      if (faults.garbage || (corrupt?.kind === "corrupt-frames" && Math.random() < corrupt.probability)) {
        stats.garbage++;
        out += `${ch.name}=\u00ff\u00fe#?${Math.random().toString(36).slice(2, 6)}\r\n`;
      } else if (faults.sensorFault || player.active("sensor-fault", undefined, ch.name)) {
        out += `${ch.name}=ERR\r\n`;
      } else {
        out += formatAsciiLine(ch.name, fixed.get(ch.name) ?? player.tempC(ch, undefined, ch.name));
      }
    }
    await write(out);
  }

  const interval = options.intervalMs ?? ascii.intervalMs;
  // intervalMs 0: lines only when tick() is called (tests drive the probe by hand).
  const timer = interval > 0 ? setInterval(() => void tick(), interval) : undefined;
  return {
    stats,
    setFault(f) {
      faults = { ...f };
    },
    setTemp(channel, tempC) {
      fixed.set(channel, tempC);
    },
    tick,
    writeRaw: write,
    async close() {
      if (timer) clearInterval(timer);
      if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    },
  };
}
