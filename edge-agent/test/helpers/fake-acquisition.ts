/** A test double at the acquisition seam: the test hands readings to the agent and sees coil writes. */
import type { AcquisitionPort, ProbeHealthEntry } from "../../src/agent/index.ts";
import type { NewReading } from "../../src/outbox/index.ts";

export class FakeAcquisition implements AcquisitionPort {
  coils: { busId: string; slaveId: number; coil: number; on: boolean }[] = [];
  probes: ProbeHealthEntry[];
  failCoilWrites = 0;
  private onReading: ((r: NewReading) => void) | undefined;

  constructor(probes: { probeId: string; unitId: string }[]) {
    this.probes = probes.map((p) => ({
      ...p,
      calibrationDueAt: null,
      calibrationOverdue: false,
      faults: { sensor_fault: 0, out_of_range: 0, comm_error: 0, stale: 0 },
      consecutiveFailures: 0,
      lastOkAt: null,
    }));
  }

  async start(onReading: (r: NewReading) => void): Promise<void> {
    this.onReading = onReading;
  }

  async stop(): Promise<void> {
    this.onReading = undefined;
  }

  health(): ProbeHealthEntry[] {
    return this.probes.map((p) => ({ ...p, faults: { ...p.faults } }));
  }

  async writeCoil(busId: string, slaveId: number, coil: number, on: boolean): Promise<void> {
    if (this.failCoilWrites > 0) {
      this.failCoilWrites -= 1;
      throw new Error("relay module did not answer");
    }
    this.coils.push({ busId, slaveId, coil, on });
  }

  emit(r: NewReading): void {
    this.onReading?.(r);
  }
}
