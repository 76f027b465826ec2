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
 * Nothing is switched at stop: an agent restart must not silence a tripped alarm. Across a
 * reconfiguration (remote configuration) the state is carried over (`snapshot` → `restore`):
 * a tripped unit stays tripped, a running delay keeps its start, a relay known to be on is
 * switched off when its unit is back within limits.
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
  /** When the unit went beyond (clock time), while `beyond` is set. */
  beyondSince: number;
  timer: unknown;
  active: boolean;
}

/** What a reconfigured agent takes over from the alarm it replaces. */
export interface LocalAlarmSnapshot {
  units: {
    unitId: string;
    beyond: "high" | "low" | null;
    beyondSince: number;
    active: boolean;
    latest: [string, number][];
  }[];
  outputs: { busId: string; slaveId: number; coil: number; written: boolean | undefined }[];
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
      this.units.set(u.unitId, {
        cfg: u,
        latest: new Map(),
        beyond: null,
        beyondSince: 0,
        timer: undefined,
        active: false,
      });
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
      unit.beyondSince = this.clock.now();
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

  snapshot(): LocalAlarmSnapshot {
    return {
      units: [...this.units.values()].map((u) => ({
        unitId: u.cfg.unitId,
        beyond: u.beyond,
        beyondSince: u.beyondSince,
        active: u.active,
        latest: [...u.latest],
      })),
      outputs: this.outputs.map((o) => ({
        busId: o.cfg.busId,
        slaveId: o.cfg.slaveId,
        coil: o.cfg.coil,
        written: o.written,
      })),
    };
  }

  /** Takes over units and relays that exist in both configurations (same unit id; same bus, slave, coil). */
  restore(prev: LocalAlarmSnapshot): void {
    for (const p of prev.units) {
      const u = this.units.get(p.unitId);
      if (!u) continue;
      u.latest = new Map(p.latest);
      u.active = p.active;
      if (p.beyond !== null && !p.active) {
        u.beyond = p.beyond;
        u.beyondSince = p.beyondSince;
        const left = Math.max(0, u.cfg.delayMs - (this.clock.now() - p.beyondSince));
        u.timer = this.clock.setTimeout(() => this.trip(u), left);
      } else if (p.active) {
        u.beyond = p.beyond;
        u.beyondSince = p.beyondSince;
      }
    }
    for (const o of this.outputs) {
      const p = prev.outputs.find(
        (x) => x.busId === o.cfg.busId && x.slaveId === o.cfg.slaveId && x.coil === o.cfg.coil,
      );
      if (p) o.written = p.written;
    }
  }

  stop(): void {
    for (const u of this.units.values()) {
      if (u.timer !== undefined) this.clock.clearTimeout(u.timer);
      u.timer = undefined;
    }
  }
}
