/**
 * Serial ASCII probes: devices that print a line per measurement, e.g. `T1=+04.62C\r\n`.
 * The bus config's `lineRegex` has a named group `value` and, for multi-channel devices, a
 * named group `probe` matched against each probe's `channel`.
 *
 *   serial bytes ─ split at \n (cap 256 bytes) ─ regex ─┬─ number → latest value of that probe
 *                                                      ├─ not a number ("ERR") → sensor_fault
 *                                                      └─ no match / no such channel → garbage (counted, warn)
 *   read(probes) ← latest value per probe; none within lineTimeoutMs → comm_error
 */
import { ColdtraceError, type Quality } from "@coldtrace/protocol";
import type { Logger } from "pino";
import { SerialPort } from "serialport";
import type { Clock } from "../clock.ts";
import type { AsciiProbeConfig, SerialAsciiBusConfig } from "../config/buses.ts";
import { scaleToTemp } from "../decode/reading.ts";
import type { ProbeDriver, ProbeRead } from "./types.ts";

/** Longer than any probe line; a longer run without a newline is line noise. */
const MAX_LINE_BYTES = 256;

interface Latest {
  tempC: number | null;
  quality: Quality;
  at: number;
}

export interface SerialAsciiDriver extends ProbeDriver<AsciiProbeConfig> {
  /** Lines that matched no probe, since open. */
  readonly garbageLines: number;
  readonly validLines: number;
}

export function createSerialAsciiDriver(
  bus: SerialAsciiBusConfig,
  log: Logger,
  clock: Clock,
): SerialAsciiDriver {
  const regex = new RegExp(bus.lineRegex);
  const byChannel = new Map(bus.probes.filter((p) => p.channel !== undefined).map((p) => [p.channel!, p]));
  const single = bus.probes.length === 1 ? bus.probes[0] : undefined;
  const latest = new Map<string, Latest>();
  let port: SerialPort | undefined;
  let lost = false;
  let pending = Buffer.alloc(0);
  let garbageLines = 0;
  let validLines = 0;

  function garbage(line: string, reason: string) {
    garbageLines++;
    log.warn({ busId: bus.id, reason, line: JSON.stringify(line.slice(0, 80)) }, "serial line rejected");
  }

  function onLine(raw: string) {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") return;
    const m = regex.exec(line);
    const value = m?.groups?.value;
    if (!m || value === undefined) return garbage(line, "no match");
    const channel = m.groups?.probe;
    const probe =
      channel !== undefined
        ? (byChannel.get(channel) ?? (byChannel.size === 0 ? single : undefined))
        : single;
    if (!probe) return garbage(line, "unknown channel");
    validLines++;
    const n = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(value.trim()) ? Number(value) : Number.NaN;
    // A matching line whose value is not a number (ERR, ----) is the probe saying it has no value.
    const d = Number.isFinite(n) ? scaleToTemp(n, probe) : { tempC: null, quality: "sensor_fault" as const };
    latest.set(probe.id, { tempC: d.tempC, quality: d.quality, at: clock.now() });
  }

  function onData(chunk: Buffer) {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const nl = pending.indexOf(0x0a);
      if (nl < 0) break;
      const line = pending.subarray(0, nl);
      pending = pending.subarray(nl + 1);
      if (line.length > MAX_LINE_BYTES) garbage(line.subarray(0, 80).toString("latin1"), "line too long");
      else onLine(line.toString("latin1"));
    }
    if (pending.length > MAX_LINE_BYTES) {
      garbage(pending.subarray(0, 80).toString("latin1"), "line too long");
      pending = Buffer.alloc(0);
    }
  }

  return {
    get garbageLines() {
      return garbageLines;
    },
    get validLines() {
      return validLines;
    },
    async open() {
      const p = new SerialPort({
        path: bus.port,
        baudRate: bus.baudRate,
        parity: bus.parity,
        dataBits: bus.dataBits,
        stopBits: bus.stopBits,
        autoOpen: false,
      });
      await new Promise<void>((resolve, reject) =>
        p.open((err) =>
          err
            ? reject(
                new ColdtraceError(
                  "CT_PROBE_READ",
                  `bus ${bus.id}: cannot open ${bus.port}`,
                  { busId: bus.id },
                  {
                    cause: err,
                  },
                ),
              )
            : resolve(),
        ),
      );
      p.on("data", onData);
      p.on("error", (err) => log.warn({ busId: bus.id, err }, "serial port error"));
      p.on("close", () => {
        lost = true;
      });
      port = p;
      lost = false;
    },
    isOpen: () => !!port && !lost && port.isOpen,
    async read(probes) {
      const now = clock.now();
      return probes.map((p): ProbeRead => {
        const l = latest.get(p.id);
        if (!l || now - l.at > bus.lineTimeoutMs) {
          return {
            probeId: p.id,
            tempC: null,
            quality: "comm_error",
            error: new ColdtraceError(
              "CT_PROBE_READ",
              `bus ${bus.id}: no valid line for ${p.channel ?? p.id} within ${bus.lineTimeoutMs} ms`,
              { busId: bus.id, probeId: p.id },
            ),
          };
        }
        return { probeId: p.id, tempC: l.tempC, quality: l.quality };
      });
    },
    async close() {
      const p = port;
      port = undefined;
      if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
    },
  };
}
