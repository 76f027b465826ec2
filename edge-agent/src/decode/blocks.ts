/**
 * Groups Modbus probes into block reads: probes on the same slave and function code whose
 * registers are adjacent (or at most `maxGap` apart) are read with one request, which on a
 * 9600-baud bus costs one turnaround instead of many.
 * Modbus Application Protocol v1.1b3 §6.3/§6.4: at most 125 registers per read.
 */
import { type ModbusProbeConfig, registerCount } from "../config/buses.ts";

export const MAX_REGISTERS_PER_READ = 125;

export interface RegisterBlock<
  P extends Pick<ModbusProbeConfig, "slaveId" | "function" | "register" | "type">,
> {
  slaveId: number;
  function: 3 | 4;
  start: number;
  count: number;
  probes: P[];
}

export function planBlocks<P extends Pick<ModbusProbeConfig, "slaveId" | "function" | "register" | "type">>(
  probes: readonly P[],
  maxGap = 0,
): RegisterBlock<P>[] {
  const sorted = [...probes].sort(
    (a, b) => a.slaveId - b.slaveId || a.function - b.function || a.register - b.register,
  );
  const blocks: RegisterBlock<P>[] = [];
  let current: RegisterBlock<P> | undefined;
  for (const p of sorted) {
    const end = p.register + registerCount(p.type);
    if (
      current &&
      current.slaveId === p.slaveId &&
      current.function === p.function &&
      p.register <= current.start + current.count + maxGap &&
      Math.max(end, current.start + current.count) - current.start <= MAX_REGISTERS_PER_READ
    ) {
      current.count = Math.max(end, current.start + current.count) - current.start;
      current.probes.push(p);
      continue;
    }
    current = {
      slaveId: p.slaveId,
      function: p.function,
      start: p.register,
      count: end - p.register,
      probes: [p],
    };
    blocks.push(current);
  }
  return blocks;
}
