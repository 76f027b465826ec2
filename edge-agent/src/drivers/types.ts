/**
 * The driver seam: one transport (an RS-485 bus, a Modbus TCP slave, a serial line) and the
 * probes behind it. A driver never throws on a bad read: a failed probe comes back as a
 * comm_error read carrying a ColdtraceError, so one bad probe never stops the others.
 */
import type { ColdtraceError, Quality, RegisterType, WordOrder } from "@coldtrace/protocol";

export interface ProbeRead {
  probeId: string;
  tempC: number | null;
  quality: Quality;
  /** Why the read failed (comm_error), for logs. */
  error?: ColdtraceError;
  /**
   * Whether a request for this probe's own registers went out. False when the driver did not
   * ask (its slave was silent for another block just now): a comm_error that is not its own.
   * Absent means true.
   */
  attempted?: boolean;
  /** A 32-bit value that does not decode to a believable temperature in its word order. */
  decode?: {
    raw: number;
    type: RegisterType;
    wordOrder: WordOrder;
    /** A float no probe can report (non-zero, below 1e-6): almost surely the word order. */
    implausible: boolean;
    /** Other word orders that give a plausible temperature from the same registers. */
    plausibleOrders: { order: WordOrder; tempC: number }[];
  };
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
