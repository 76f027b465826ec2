/**
 * The driver seam: one transport (an RS-485 bus, a Modbus TCP slave, a serial line) and the
 * probes behind it. A driver never throws on a bad read: a failed probe comes back as a
 * comm_error read carrying a ColdtraceError, so one bad probe never stops the others.
 */
import type { ColdtraceError, Quality } from "@coldtrace/protocol";

export interface ProbeRead {
  probeId: string;
  tempC: number | null;
  quality: Quality;
  /** Why the read failed (comm_error), for logs. */
  error?: ColdtraceError;
}

export interface ProbeDriver<P extends { id: string }> {
  open(): Promise<void>;
  /** Reads the given probes, using block reads where it can. Never rejects. */
  read(probes: readonly P[]): Promise<ProbeRead[]>;
  close(): Promise<void>;
  /** False after the transport was lost (TCP reset, USB adapter unplugged). */
  isOpen(): boolean;
  /** Drives a coil (Modbus drivers only). Rejects with CT_RELAY_WRITE. */
  writeCoil?(slaveId: number, coil: number, on: boolean): Promise<void>;
}
