/**
 * The local alarm: a relay at the fridge that does not need the network. When a unit stays
 * beyond one of its action limits for longer than its delay, the relay outputs wired to that
 * unit are switched on (a Modbus coil on a relay module); when the unit is back within its
 * limits, they are released.
 *
 *   reading (ok) ─▶ latest °C per probe ─▶ unit beyond a limit? ─┬─ yes: start delay timer (Clock)
 *                                                               │       └─ fires: unit active ─▶ coil on
 *                                                               └─ no:  cancel timer; unit inactive ─▶ coil off
 *
 * A unit is beyond when any of its probes' latest good reading is. Fault readings do not
 * count either way (the gateway raises probe alarms for them). A coil is on while any unit
 * driving it is active. A failed coil write is logged and retried on the next reading.
 * Nothing is switched at stop: an agent restart must not silence a tripped alarm.
 */
import type { Quality } from "@coldtrace/protocol";
import type { Logger } from "pino";
import { type Clock, systemClock } from "../clock.ts";

export interface AlarmUnit {
  unitId: string;
  lowC?: number;
  highC?: number;
  delayMs: number;
}

export interface AlarmOutput {
  busId: string;
  slaveId: number;
  coil: number;
  /** Units that drive this output. */
  units: readonly string[];
}

export type WriteCoil = (busId: string, slaveId: number, coil: number, on: boolean) => Promise<void>;

export interface AlarmReading {
  probeId: string;
  unitId: string;
  tempC: number | null;
  quality: Quality;
}

interface UnitState {
  cfg: AlarmUnit;
  latest: Map<string, number>;
  beyond: "high" | "low" | null;
  timer: unknown;
  active: boolean;
}

interface OutputState {
  cfg: AlarmOutput;
  /** What the coil was last successfully set to (undefined: never written). */
  written: boolean | undefined;
  writing: boolean;
}

export interface LocalAlarmDeps {
  units: readonly AlarmUnit[];
  outputs: readonly AlarmOutput[];
  writeCoil: WriteCoil;
  log: Logger;
  clock?: Clock;
}

export class LocalAlarm {
  private readonly units = new Map<string, UnitState>();
  private readonly outputs: OutputState[];
  private readonly writeCoil: WriteCoil;
  private readonly log: Logger;
  private readonly clock: Clock;

  constructor(deps: LocalAlarmDeps) {
    for (const u of deps.units) {
      if (u.lowC === undefined && u.highC === undefined) continue;
      this.units.set(u.unitId, { cfg: u, latest: new Map(), beyond: null, timer: undefined, active: false });
    }
    this.outputs = deps.outputs.map((cfg) => ({ cfg, written: undefined, writing: false }));
    this.writeCoil = deps.writeCoil;
    this.log = deps.log;
    this.clock = deps.clock ?? systemClock;
  }

  /** Units whose alarm is tripped. */
  activeUnits(): string[] {
    return [...this.units.values()].filter((u) => u.active).map((u) => u.cfg.unitId);
  }

  onReading(r: AlarmReading): void {
    const unit = this.units.get(r.unitId);
    if (!unit) return;
    if (r.quality !== "ok" || r.tempC === null) {
      this.reconcile();
      return;
    }
    unit.latest.set(r.probeId, r.tempC);
    const beyond = this.beyond(unit);
    if (beyond !== null && unit.beyond === null) {
      unit.beyond = beyond;
      this.log.info(
        { unitId: r.unitId, side: beyond, delayMs: unit.cfg.delayMs },
        "unit beyond action limit",
      );
      unit.timer = this.clock.setTimeout(() => this.trip(unit), unit.cfg.delayMs);
    } else if (beyond === null && unit.beyond !== null) {
      unit.beyond = null;
      if (unit.timer !== undefined) this.clock.clearTimeout(unit.timer);
      unit.timer = undefined;
      if (unit.active) {
        unit.active = false;
        this.log.warn({ unitId: r.unitId }, "local alarm released: unit back within action limits");
      } else {
        this.log.info({ unitId: r.unitId }, "unit back within action limits");
      }
    }
    this.reconcile();
  }

  private beyond(unit: UnitState): "high" | "low" | null {
    const { lowC, highC } = unit.cfg;
    for (const t of unit.latest.values()) {
      if (highC !== undefined && t > highC) return "high";
      if (lowC !== undefined && t < lowC) return "low";
    }
    return null;
  }

  private trip(unit: UnitState): void {
    unit.timer = undefined;
    unit.active = true;
    this.log.error(
      { unitId: unit.cfg.unitId, side: unit.beyond, delayMs: unit.cfg.delayMs },
      "local alarm tripped",
    );
    this.reconcile();
  }

  /** Bring every output in line with its units; a failed write is retried on the next call. */
  private reconcile(): void {
    for (const out of this.outputs) {
      const want = out.cfg.units.some((u) => this.units.get(u)?.active === true);
      if (out.written === want || out.writing) continue;
      if (out.written === undefined && !want) continue;
      out.writing = true;
      const { busId, slaveId, coil } = out.cfg;
      this.writeCoil(busId, slaveId, coil, want).then(
        () => {
          out.writing = false;
          out.written = want;
          this.log.info({ busId, slaveId, coil, on: want }, "alarm relay switched");
        },
        (err: unknown) => {
          out.writing = false;
          this.log.error(
            { err, busId, slaveId, coil, on: want },
            "alarm relay write failed; retrying on the next reading",
          );
        },
      );
    }
  }

  stop(): void {
    for (const u of this.units.values()) {
      if (u.timer !== undefined) this.clock.clearTimeout(u.timer);
      u.timer = undefined;
    }
  }
}
