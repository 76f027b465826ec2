/**
 * Modbus RTU and Modbus TCP drivers on modbus-serial.
 *
 *   probes ─ planBlocks (same slave + FC + adjacent registers, ≤125) ─┬─ FC3/FC4 request ─ decode each probe
 *                                                                     └─ failure × (1 + retries) → comm_error
 *                                                                        for that block's probes only
 *
 * A failed request is retried (`retries`, default once) before its probes are marked, and a
 * failure marks only the probes whose registers were in the failed request: a CRC error on
 * one block never turns the slave's other blocks into comm_error. Only a slave that stayed
 * silent through every attempt is not asked for its other blocks in the same cycle; those
 * probes come back `attempted: false`, so their counters are not charged with it.
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
import { decodeProbeValue, needsOrderHint, plausibleOrders } from "../decode/reading.ts";
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

/**
 * The slave said nothing: a timeout (modbus-serial's TransactionTimedOutError, errno
 * ETIMEDOUT; pinned version, see the tripwire test) or a TCP gateway's exception 0x0A/0x0B
 * ("path unavailable" / "target device failed to respond").
 */
export function noAnswer(err: unknown): boolean {
  const e = err as { errno?: unknown; modbusCode?: unknown } | undefined;
  return e?.errno === "ETIMEDOUT" || e?.modbusCode === 0x0a || e?.modbusCode === 0x0b;
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
      /** Slaves that stayed silent through every attempt of a block in this cycle. */
      const silent = new Map<number, string>();
      for (const block of planBlocks(probes, bus.maxBlockGap)) {
        const what = `slave ${block.slaveId} FC${block.function} ${block.start}+${block.count}`;
        const silence = silent.get(block.slaveId);
        if (silence !== undefined) {
          // Not asked: the slave did not answer another block just now (each attempt costs
          // timeoutMs of bus time). Not this probe's failure, and its own request is named.
          const error = new ColdtraceError(
            "CT_PROBE_READ",
            `bus ${bus.id} ${what}: not polled, the slave did not answer ${silence} in this cycle`,
            { busId: bus.id, slaveId: block.slaveId, function: block.function, register: block.start },
          );
          for (const p of block.probes)
            out.push({ probeId: p.id, tempC: null, quality: "comm_error", error, attempted: false });
          continue;
        }
        let lastErr: unknown;
        let data: number[] | undefined;
        let attempts = 0;
        // A CRC error or a timeout can be one burst of noise: the same request again (default
        // once, `retries`) before the probes of this block are marked.
        for (let attempt = 0; attempt <= bus.retries && !data; attempt++) {
          attempts++;
          try {
            data = await request(block.slaveId, block.function, block.start, block.count);
            if (attempt > 0) log.debug({ slaveId: block.slaveId, attempt, request: what }, "request retried");
          } catch (err) {
            lastErr = err;
            markFailed(block.slaveId);
            if (lost) break;
          }
        }
        if (!data) {
          const error = new ColdtraceError(
            "CT_PROBE_READ",
            `bus ${bus.id} ${what}: ${describeError(lastErr)}${attempts > 1 ? ` (${attempts} attempts)` : ""}`,
            {
              busId: bus.id,
              slaveId: block.slaveId,
              function: block.function,
              register: block.start,
              attempts,
            },
            { cause: lastErr },
          );
          for (const p of block.probes)
            out.push({ probeId: p.id, tempC: null, quality: "comm_error", error, attempted: true });
          // A slave that answered (a CRC error, an exception) is there: its other blocks are
          // still asked. Only silence through every attempt spares the rest of its blocks.
          if (noAnswer(lastErr))
            silent.set(block.slaveId, `FC${block.function} ${block.start}+${block.count}`);
          continue;
        }
        const bytes = registersToBytes(data);
        for (const p of block.probes) {
          const at = (p.register - block.start) * 2;
          try {
            const d = decodeProbeValue(bytes, at, p);
            const read: ProbeRead = { probeId: p.id, tempC: d.tempC, quality: d.quality, attempted: true };
            if (needsOrderHint(p, d))
              read.decode = {
                raw: d.raw,
                type: p.type,
                wordOrder: p.wordOrder,
                implausible: d.implausible === true,
                plausibleOrders: plausibleOrders(bytes, at, p),
              };
            out.push(read);
            log.trace({ probeId: p.id, raw: d.raw }, "probe decoded");
          } catch (err) {
            // A reply shorter than asked for: garbage that passed the CRC. Not the probe's value.
            const error =
              err instanceof ColdtraceError
                ? err
                : new ColdtraceError("CT_PROBE_DECODE", String(err), { probeId: p.id }, { cause: err });
            out.push({ probeId: p.id, tempC: null, quality: "comm_error", error, attempted: true });
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
