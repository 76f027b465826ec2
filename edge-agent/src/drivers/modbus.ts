/**
 * Modbus RTU and Modbus TCP drivers on modbus-serial.
 *
 *   probes ─ planBlocks (same slave + FC + adjacent registers, ≤125) ─┬─ FC3/FC4 request ─ decode each probe
 *                                                                     └─ failure × (1 + retries) → comm_error
 *
 * RTU runs on the agent's own line port (rtu-port.ts) through modbus-serial's custom-port
 * constructor: it delimits frames by the length the request implies (USB RS-485 adapters split
 * one frame into several chunks) and forgets stale bytes before every request.
 */
import { ColdtraceError } from "@coldtrace/protocol";
import modbusSerial from "modbus-serial";
import type { Logger } from "pino";
import type { ModbusProbeConfig, ModbusRtuBusConfig, ModbusTcpBusConfig } from "../config/buses.ts";
import { planBlocks } from "../decode/blocks.ts";
import { decodeProbeValue } from "../decode/reading.ts";
import { registersToBytes } from "../decode/registers.ts";
import { RtuLinePort } from "./rtu-port.ts";
import type { ProbeDriver, ProbeRead } from "./types.ts";

// A CommonJS package: Node's default import is module.exports, whose `.default` is itself.
const ModbusRTU = modbusSerial.default;
export type ModbusClient = InstanceType<typeof ModbusRTU>;

/** Connects a modbus-serial client for a bus (RTU on our line port, or TCP) with its timeout set. */
export async function connectModbus(bus: ModbusRtuBusConfig | ModbusTcpBusConfig): Promise<ModbusClient> {
  let client: ModbusClient;
  try {
    if (bus.type === "modbus-rtu") {
      const port = new RtuLinePort({
        path: bus.port,
        baudRate: bus.baudRate,
        parity: bus.parity,
        dataBits: bus.dataBits,
        stopBits: bus.stopBits,
      });
      client = new ModbusRTU(port);
      const opening = client;
      await new Promise<void>((resolve, reject) =>
        opening.open((err: unknown) => (err ? reject(err) : resolve())),
      );
    } else {
      client = new ModbusRTU();
      await client.connectTCP(bus.host, { port: bus.port, timeout: bus.timeoutMs });
    }
  } catch (err) {
    const where = bus.type === "modbus-rtu" ? bus.port : `${bus.host}:${bus.port}`;
    throw new ColdtraceError(
      "CT_PROBE_READ",
      `bus ${bus.id}: cannot open ${where}`,
      { busId: bus.id, where },
      {
        cause: err,
      },
    );
  }
  client.setTimeout(bus.timeoutMs);
  return client;
}

function describeError(err: unknown): string {
  if (err && typeof err === "object") {
    const e = err as { message?: unknown; modbusCode?: unknown; name?: unknown };
    if (typeof e.modbusCode === "number") return `exception ${e.modbusCode}: ${String(e.message)}`;
    if (typeof e.message === "string") return e.message;
  }
  return String(err);
}

export function createModbusDriver(
  bus: ModbusRtuBusConfig | ModbusTcpBusConfig,
  log: Logger,
): ProbeDriver<ModbusProbeConfig> {
  let client: ModbusClient | undefined;
  let lost = false;
  /** RTU: wall time until which a slave that just failed may still send a late reply. */
  const quietUntil = new Map<number, number>();

  async function request(slaveId: number, fc: 3 | 4, start: number, count: number): Promise<number[]> {
    if (!client?.isOpen) {
      lost = true;
      throw new Error("port not open");
    }
    await beforeRequest(slaveId);
    client.setID(slaveId);
    const r =
      fc === 3
        ? await client.readHoldingRegisters(start, count)
        : await client.readInputRegisters(start, count);
    return r.data;
  }

  /**
   * Modbus RTU frames carry no transaction id, so a slow slave's reply that arrives during the
   * *next* request to the same slave would be taken for its answer (same length, other
   * registers). After a failure, the next request to that slave waits another timeoutMs for
   * the line to go quiet (a reply that comes meanwhile is ignored, and the line port forgets
   * any bytes still buffered when the next request goes out); requests to other slaves go
   * ahead (frames from other ids are not taken). TCP needs none of this: MBAP transaction ids
   * pair replies with requests.
   */
  async function beforeRequest(slaveId: number): Promise<void> {
    if (bus.type !== "modbus-rtu") return;
    const waitMs = (quietUntil.get(slaveId) ?? 0) - Date.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    quietUntil.delete(slaveId);
  }

  function markFailed(slaveId: number): void {
    if (bus.type === "modbus-rtu") quietUntil.set(slaveId, Date.now() + bus.timeoutMs);
  }

  return {
    async open() {
      client = await connectModbus(bus);
      lost = false;
      client.on("close", () => {
        lost = true;
      });
    },
    isOpen: () => !!client && !lost && client.isOpen,
    async read(probes) {
      const out: ProbeRead[] = [];
      // A slave that failed one block is not asked for its next block in the same cycle: it is
      // probably gone, and its late reply could still arrive during the next request.
      const failed = new Map<number, ColdtraceError>();
      for (const block of planBlocks(probes, bus.maxBlockGap)) {
        const earlier = failed.get(block.slaveId);
        if (earlier) {
          for (const p of block.probes)
            out.push({ probeId: p.id, tempC: null, quality: "comm_error", error: earlier });
          continue;
        }
        let lastErr: unknown;
        let data: number[] | undefined;
        for (let attempt = 0; attempt <= bus.retries && !data; attempt++) {
          try {
            data = await request(block.slaveId, block.function, block.start, block.count);
          } catch (err) {
            lastErr = err;
            markFailed(block.slaveId);
            if (lost) break;
          }
        }
        if (!data) {
          const error = new ColdtraceError(
            "CT_PROBE_READ",
            `bus ${bus.id} slave ${block.slaveId} FC${block.function} ${block.start}+${block.count}: ${describeError(lastErr)}`,
            { busId: bus.id, slaveId: block.slaveId, function: block.function, register: block.start },
            { cause: lastErr },
          );
          for (const p of block.probes)
            out.push({ probeId: p.id, tempC: null, quality: "comm_error", error });
          failed.set(block.slaveId, error);
          continue;
        }
        const bytes = registersToBytes(data);
        for (const p of block.probes) {
          try {
            const d = decodeProbeValue(bytes, (p.register - block.start) * 2, p);
            out.push({ probeId: p.id, tempC: d.tempC, quality: d.quality });
            log.trace({ probeId: p.id, raw: d.raw }, "probe decoded");
          } catch (err) {
            // A reply shorter than asked for: garbage that passed the CRC. Not the probe's value.
            const error =
              err instanceof ColdtraceError
                ? err
                : new ColdtraceError("CT_PROBE_DECODE", String(err), { probeId: p.id }, { cause: err });
            out.push({ probeId: p.id, tempC: null, quality: "comm_error", error });
          }
        }
      }
      return out;
    },
    async writeCoil(slaveId, coil, on) {
      try {
        if (!client?.isOpen) throw new Error("port not open");
        await beforeRequest(slaveId);
        client.setID(slaveId);
        await client.writeCoil(coil, on);
      } catch (err) {
        markFailed(slaveId);
        throw new ColdtraceError(
          "CT_RELAY_WRITE",
          `bus ${bus.id} slave ${slaveId}: cannot write coil ${coil}: ${describeError(err)}`,
          { busId: bus.id, slaveId, coil },
          { cause: err },
        );
      }
    },
    async close() {
      const c = client;
      client = undefined;
      if (c?.isOpen) await new Promise<void>((resolve) => c.close(() => resolve()));
    },
  };
}
