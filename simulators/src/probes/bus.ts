/**
 * What the RTU and TCP simulators share: a set of slaves on one bus, the scenario player, and
 * the knobs tests turn (faults, pinned temperatures).
 */

import type { z } from "zod";
import { createSlave, type SimulatedSlave, type SlaveFaults } from "./modbus-slave.ts";
import {
  playScenario,
  type Scenario,
  type ScenarioInput,
  type ScenarioPlayer,
  type SimClock,
  scenarioSchema,
  slaveSchema,
  wallClock,
} from "./scenario.ts";

export interface SimBusOptions {
  /** Slaves in addition to the scenario's (z.input of the scenario's `slaves[]`). */
  slaves?: z.input<typeof slaveSchema>[];
  scenario?: Scenario | ScenarioInput;
  /** Reply delay after a request, added to the scenario's turnaroundMs. */
  turnaroundMs?: number;
  clock?: SimClock;
}

export interface SimBus {
  readonly slaves: Map<number, SimulatedSlave>;
  readonly player: ScenarioPlayer;
  readonly turnaroundMs: number;
  slave(id: number): SimulatedSlave;
  setFault(slaveId: number, faults: SlaveFaults): void;
  setTemp(slaveId: number, register: number, tempC: number | null): void;
}

export function createSimBus(options: SimBusOptions): SimBus {
  const scenario = scenarioSchema.parse(options.scenario ?? {});
  const specs = [...scenario.slaves, ...(options.slaves ?? []).map((s) => slaveSchema.parse(s))];
  const slaves = new Map<number, SimulatedSlave>(specs.map((s) => [s.id, createSlave(s)]));
  const player = playScenario(scenario, options.clock ?? wallClock);
  const slave = (id: number) => {
    const s = slaves.get(id);
    if (!s) throw new RangeError(`no simulated slave ${id}`);
    return s;
  };
  return {
    slaves,
    player,
    turnaroundMs: scenario.turnaroundMs + (options.turnaroundMs ?? 0),
    slave,
    setFault(id, faults) {
      slave(id).faults = { ...faults };
    },
    setTemp(id, register, tempC) {
      slave(id).fixed.set(register, tempC);
    },
  };
}
