/**
 * Acquisition: every bus of the agent, its driver and its poll scheduler, turned into a
 * stream of readings with contract quality flags, plus per-probe health.
 *
 *   BusConfig[] ─► driver (modbus-rtu | modbus-tcp | serial-ascii) ─► bus scheduler (one queue per bus)
 *                                                                       │ ProbeRead
 *                                                                       ▼
 *                      calibration already applied · stale detector · health counters ─► onReading
 *
 * Buses are independent: one that fails to open is retried with backoff while the others run.
 */
import { ColdtraceError, type Quality } from "@coldtrace/protocol";
import type { Logger } from "pino";
import { type Clock, systemClock } from "../clock.ts";
import type { AsciiProbeConfig, BusConfig, ModbusProbeConfig, ProbeConfig } from "../config/buses.ts";
import { orderHint } from "../decode/reading.ts";
import { createStaleDetector, type StaleDetector } from "../decode/stale.ts";
import { createModbusDriver } from "../drivers/modbus.ts";
import { createSerialAsciiDriver } from "../drivers/serial-ascii.ts";
import type { ProbeDriver, ProbeRead } from "../drivers/types.ts";
import { type BusScheduler, createBusScheduler } from "../scheduler/bus-scheduler.ts";
import { createProbeHealth, type ProbeHealthEntry, type ProbeHealthTracker } from "./health.ts";

export type { Clock } from "../clock.ts";
export type { ProbeHealthEntry } from "./health.ts";

export interface AcquiredReading {
  probeId: string;
  unitId: string;
  /** Event time: when the request for this reading went out (ms since epoch, integer). */
  observedAt: number;
  tempC: number | null;
  quality: Quality;
}

export interface Acquisition {
  /** Opens all drivers; a driver that fails to open is retried with backoff, others run. */
  start(onReading: (r: AcquiredReading) => void): Promise<void>;
  stop(): Promise<void>;
  health(): ProbeHealthEntry[];
  /** Drive a Modbus coil (local alarm relay). Rejects with CT_RELAY_WRITE on failure. */
  writeCoil(busId: string, slaveId: number, coil: number, on: boolean): Promise<void>;
}

export interface AcquisitionDeps {
  log: Logger;
  clock?: Clock;
  /** Replaces how drivers are made (tests inject a driver at the seam). */
  makeDriver?: (bus: BusConfig, log: Logger, clock: Clock) => ProbeDriver<ProbeConfig>;
}

function defaultDriver(bus: BusConfig, log: Logger, clock: Clock): ProbeDriver<ProbeConfig> {
  if (bus.type === "serial-ascii")
    return createSerialAsciiDriver(bus, log, clock) as ProbeDriver<ProbeConfig>;
  return createModbusDriver(bus, log) as ProbeDriver<ProbeConfig>;
}

interface ProbeState {
  probe: ProbeConfig;
  health: ProbeHealthTracker;
  /** The overdue-calibration warning was logged (once per start, or when the date passes). */
  overdueWarned: boolean;
  /** The last reading was a comm_error (a failure that was not asked for is logged once per run). */
  failing: boolean;
  /** The word-order hint was logged (once per run of implausible values). */
  orderWarned: boolean;
  stale?: StaleDetector;
  log: Logger;
}

export function createAcquisition(buses: BusConfig[], deps: AcquisitionDeps): Acquisition {
  const clock = deps.clock ?? systemClock;
  const log = deps.log;
  const makeDriver = deps.makeDriver ?? defaultDriver;
  const states = new Map<string, ProbeState>();
  for (const bus of buses) {
    for (const probe of bus.probes) {
      states.set(probe.id, {
        probe,
        health: createProbeHealth(probe.id, probe.unit, probe.calibration?.dueDate),
        overdueWarned: false,
        failing: false,
        orderWarned: false,
        ...(probe.staleAfterMs !== undefined ? { stale: createStaleDetector(probe.staleAfterMs) } : {}),
        log: log.child({ probeId: probe.id }),
      });
    }
  }
  const schedulers = new Map<
    string,
    { bus: BusConfig; scheduler: BusScheduler; driver: ProbeDriver<ProbeConfig> }
  >();
  let started = false;

  function warnOverdue(state: ProbeState) {
    state.overdueWarned = true;
    state.log.warn({ dueDate: state.probe.calibration?.dueDate }, "probe calibration overdue");
  }

  function onRead(
    onReading: (r: AcquiredReading) => void,
    probe: ProbeConfig,
    read: ProbeRead,
    observedAt: number,
    attempted: boolean,
  ) {
    const state = states.get(probe.id)!;
    let quality = read.quality;
    if (quality === "ok" && read.tempC !== null && state.stale?.observe(read.tempC, observedAt))
      quality = "stale";
    state.health.record(quality, observedAt, attempted);
    if (!state.overdueWarned && state.health.entry(observedAt).calibrationOverdue) warnOverdue(state);
    if (quality === "comm_error") {
      // Every failed request of its own is a warning with the probe id; a reading for which
      // nothing was asked (port missing, slave backing off) is one warning when it starts.
      if (attempted) state.log.warn({ err: read.error }, "probe read failed");
      else if (!state.failing) state.log.warn({ err: read.error }, "probe not read");
      else state.log.debug({ err: read.error }, "probe not read");
    } else if (quality !== "ok") {
      state.log.debug({ quality }, "probe reading not ok");
    }
    if (read.decode && !state.orderWarned) {
      state.orderWarned = true;
      const d = read.decode;
      state.log.warn(
        {
          raw: d.raw,
          type: d.type,
          wordOrder: d.wordOrder,
          plausibleOrders: d.plausibleOrders,
          hint: orderHint(d.plausibleOrders),
        },
        d.implausible
          ? "probe value not plausible: wrong word order?"
          : "probe value out of range in its word order",
      );
    }
    if (quality === "ok") state.orderWarned = false;
    state.failing = quality === "comm_error";
    onReading({
      probeId: probe.id,
      unitId: probe.unit,
      observedAt: Math.round(observedAt),
      tempC: read.tempC,
      quality,
    });
  }

  return {
    async start(onReading) {
      if (started) return;
      started = true;
      const now = clock.now();
      for (const s of states.values()) {
        s.overdueWarned = false;
        if (s.health.entry(now).calibrationOverdue) warnOverdue(s);
      }
      for (const bus of buses) {
        const busLog = log.child({ busId: bus.id });
        const driver = makeDriver(bus, busLog, clock);
        const scheduler = createBusScheduler<ProbeConfig>({
          busId: bus.id,
          probes: bus.probes,
          driver,
          clock,
          log, // the scheduler adds busId itself
          backoff: bus.type === "serial-ascii" ? { initialMs: 1000, maxMs: 60_000 } : bus.backoff,
          groupKey: (p) => (bus.type === "serial-ascii" ? bus.id : (p as ModbusProbeConfig).slaveId),
          onRead: (probe, read, observedAt, attempted) =>
            onRead(onReading, probe, read, observedAt, attempted),
        });
        schedulers.set(bus.id, { bus, scheduler, driver });
      }
      await Promise.all([...schedulers.values()].map((s) => s.scheduler.start()));
    },
    async stop() {
      await Promise.all([...schedulers.values()].map((s) => s.scheduler.stop()));
      schedulers.clear();
      started = false;
    },
    health() {
      const now = clock.now();
      return [...states.values()].map((s) => s.health.entry(now));
    },
    async writeCoil(busId, slaveId, coil, on) {
      const s = schedulers.get(busId);
      const bus = s?.bus ?? buses.find((b) => b.id === busId);
      if (!bus || bus.type === "serial-ascii") {
        throw new ColdtraceError(
          "CT_RELAY_WRITE",
          `bus ${busId}: ${bus ? "a serial-ascii bus has no coils" : "no such bus"}`,
          { busId, slaveId, coil },
        );
      }
      if (!s?.driver.writeCoil || !s.driver.isOpen()) {
        throw new ColdtraceError("CT_RELAY_WRITE", `bus ${busId}: not open`, { busId, slaveId, coil });
      }
      const write = s.driver.writeCoil;
      await s.scheduler.exclusive(() => write(slaveId, coil, on));
      log.info({ busId, slaveId, coil, on }, "coil written");
    },
  };
}

export type { AsciiProbeConfig, BusConfig, ModbusProbeConfig, ProbeConfig };
