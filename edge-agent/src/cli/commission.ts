/**
 * Commissioning commands for technicians on site: `scan` finds the Modbus slaves and readable
 * registers on a bus; `read` reads one probe once, exactly the registers its type needs, and
 * for a 32-bit value shows the pair in all four word orders and names the order that gives a
 * plausible temperature, because a wrong word order is the commonest commissioning mistake
 * (4.62 °C read as 2.1e-32, which rounds to a believable 0 °C, or as -1.3e+27).
 *
 *   coldtrace-agent scan --port /dev/serial/by-id/usb-FTDI… [--baud 9600] [--parity none] [--from 1 --to 247] [--registers 0-9]
 *   coldtrace-agent scan --host 10.0.0.20 [--tcp-port 502] …
 *   coldtrace-agent read --config agent.yaml --probe fridge-1-top
 *   coldtrace-agent read --port … --slave 3 --register 100 [--function 4] [--type float32 --word-order CDAB --scale 1]
 *
 * Both return an exit code (0 found/read, 1 nothing answered, 2 usage); only cli/main.ts exits.
 */
import { parseArgs } from "node:util";
import { ColdtraceError, isColdtraceError } from "@coldtrace/protocol";
import { z } from "zod";
import {
  type BusConfig,
  busesSchema,
  type ModbusProbeConfig,
  type ModbusRtuBusConfig,
  type ModbusTcpBusConfig,
  modbusProbeSchema,
  modbusRtuBusSchema,
  modbusTcpBusSchema,
  registerCount,
} from "../config/buses.ts";
import { configIssues, formatConfigIssues } from "../config/index.ts";
import { readYamlFile } from "../config/yaml.ts";
import { decodeProbeValue, needsOrderHint, orderHint, plausibleOrders } from "../decode/reading.ts";
import { decodeAllOrders, decodeRaw, registersToBytes } from "../decode/registers.ts";
import { connectModbus, type ModbusClient } from "../drivers/modbus.ts";

type Parity = "none" | "even" | "odd";

export interface ScanArgs {
  port?: string;
  host?: string;
  tcpPort?: number;
  baudRate: number;
  parity: Parity;
  fromId?: number;
  toId?: number;
  /** Register ranges to try on each slave, e.g. "0-9,100-101" (default "0-1"). */
  registers?: string;
  timeoutMs?: number;
}

export interface ReadArgs {
  config?: string;
  probe?: string;
  port?: string;
  host?: string;
  tcpPort?: number;
  baudRate?: number;
  parity?: Parity;
  slaveId?: number;
  register?: number;
  function?: 3 | 4;
  type?: ModbusProbeConfig["type"];
  wordOrder?: ModbusProbeConfig["wordOrder"];
  scale?: number;
  offset?: number;
  timeoutMs?: number;
}

type Out = ((line: string) => void) | { write(text: string): unknown };

function lineWriter(out: Out): (line: string) => void {
  return typeof out === "function" ? out : (line) => void out.write(`${line}\n`);
}

class UsageError extends Error {}

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name}: expected a number, got "${v}"`);
  return n;
}

const SCAN_USAGE = `usage: coldtrace-agent scan (--port <tty> [--baud 9600] [--parity none|even|odd] | --host <ip> [--tcp-port 502])
                            [--from 1] [--to 247] [--registers 0-1,100-101] [--timeout 200]`;
const READ_USAGE = `usage: coldtrace-agent read --config <agent.yaml> --probe <id>
       coldtrace-agent read (--port <tty> [--baud 9600] [--parity none] | --host <ip> [--tcp-port 502])
                            --slave <id> --register <n> [--function 3|4] [--type int16|uint16|int32|uint32|float32]
                            [--word-order ABCD|CDAB|BADC|DCBA] [--scale 1] [--offset 0] [--timeout 1000]`;

const connectionOptions = {
  port: { type: "string" },
  host: { type: "string" },
  "tcp-port": { type: "string" },
  baud: { type: "string" },
  parity: { type: "string" },
  timeout: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function parity(v: string | undefined): Parity | undefined {
  if (v === undefined) return undefined;
  if (v === "none" || v === "even" || v === "odd") return v;
  throw new UsageError(`--parity: expected none, even or odd, got "${v}"`);
}

function scanArgsFromArgv(argv: readonly string[]): ScanArgs | "help" {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...connectionOptions,
      from: { type: "string" },
      to: { type: "string" },
      registers: { type: "string" },
    },
  });
  if (values.help) return "help";
  const args: ScanArgs = {
    baudRate: num(values.baud, "baud") ?? 9600,
    parity: parity(values.parity) ?? "none",
  };
  if (values.port !== undefined) args.port = values.port;
  if (values.host !== undefined) args.host = values.host;
  const tcpPort = num(values["tcp-port"], "tcp-port");
  if (tcpPort !== undefined) args.tcpPort = tcpPort;
  const from = num(values.from, "from");
  if (from !== undefined) args.fromId = from;
  const to = num(values.to, "to");
  if (to !== undefined) args.toId = to;
  if (values.registers !== undefined) args.registers = values.registers;
  const timeout = num(values.timeout, "timeout");
  if (timeout !== undefined) args.timeoutMs = timeout;
  return args;
}

function readArgsFromArgv(argv: readonly string[]): ReadArgs | "help" {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...connectionOptions,
      config: { type: "string", short: "c" },
      probe: { type: "string" },
      slave: { type: "string" },
      register: { type: "string" },
      function: { type: "string" },
      type: { type: "string" },
      "word-order": { type: "string" },
      scale: { type: "string" },
      offset: { type: "string" },
    },
  });
  if (values.help) return "help";
  const args: ReadArgs = {};
  const set = <K extends keyof ReadArgs>(k: K, v: ReadArgs[K] | undefined) => {
    if (v !== undefined) args[k] = v;
  };
  set("config", values.config);
  set("probe", values.probe);
  set("port", values.port);
  set("host", values.host);
  set("tcpPort", num(values["tcp-port"], "tcp-port"));
  set("baudRate", num(values.baud, "baud"));
  set("parity", parity(values.parity));
  set("slaveId", num(values.slave, "slave"));
  set("register", num(values.register, "register"));
  const fc = num(values.function, "function");
  if (fc !== undefined && fc !== 3 && fc !== 4)
    throw new UsageError(`--function: expected 3 or 4, got ${fc}`);
  set("function", fc as 3 | 4 | undefined);
  set("type", values.type as ReadArgs["type"]);
  set("wordOrder", values["word-order"] as ReadArgs["wordOrder"]);
  set("scale", num(values.scale, "scale"));
  set("offset", num(values.offset, "offset"));
  set("timeoutMs", num(values.timeout, "timeout"));
  return args;
}

/** "0-9,100-101" → [{start 0, count 10}, {start 100, count 2}]; Modbus spec §6.3: ≤125 per read. */
export function parseRegisterRanges(spec: string): { start: number; count: number }[] {
  return spec.split(",").map((part) => {
    const m = /^\s*(\d+)(?:\s*-\s*(\d+))?\s*$/.exec(part);
    if (!m) throw new UsageError(`--registers: expected ranges like 0-9,100-101, got "${spec}"`);
    const start = Number(m[1]);
    const end = m[2] === undefined ? start : Number(m[2]);
    if (end < start || end > 65_535 || end - start + 1 > 125)
      throw new UsageError(
        `--registers: ${part.trim()} must be ascending, ≤ 65535 and at most 125 registers`,
      );
    return { start, count: end - start + 1 };
  });
}

function busFor(
  a: { port?: string; host?: string; tcpPort?: number; baudRate?: number; parity?: Parity },
  timeoutMs: number,
): ModbusRtuBusConfig | ModbusTcpBusConfig {
  const probes = [{ id: "commissioning", unit: "commissioning", slaveId: 1, register: 0 }];
  if (a.port !== undefined && a.host !== undefined)
    throw new UsageError("give either --port or --host, not both");
  if (a.port !== undefined) {
    return modbusRtuBusSchema.parse({
      id: "commissioning",
      type: "modbus-rtu",
      port: a.port,
      baudRate: a.baudRate ?? 9600,
      parity: a.parity ?? "none",
      timeoutMs,
      retries: 0,
      probes,
    });
  }
  if (a.host !== undefined) {
    return modbusTcpBusSchema.parse({
      id: "commissioning",
      type: "modbus-tcp",
      host: a.host,
      port: a.tcpPort ?? 502,
      timeoutMs,
      retries: 0,
      probes,
    });
  }
  throw new UsageError("give --port <tty> (Modbus RTU) or --host <ip> (Modbus TCP)");
}

async function closeClient(client: ModbusClient): Promise<void> {
  if (client.isOpen) await new Promise<void>((resolve) => client.close(() => resolve()));
}

function modbusCodeOf(err: unknown): number | undefined {
  const code = (err as { modbusCode?: unknown } | undefined)?.modbusCode;
  return typeof code === "number" ? code : undefined;
}

const hex = (words: readonly number[]) => words.map((w) => `0x${w.toString(16).padStart(4, "0")}`).join(" ");

/** Where a command fails for a reason the technician can fix: print it and return 1 or 2. */
async function guarded(
  print: (line: string) => void,
  usage: string,
  run: () => Promise<number>,
): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof UsageError) {
      print(`error: ${err.message}`);
      print(usage);
      return 2;
    }
    if (isColdtraceError(err, "CT_CFG_INVALID") || isColdtraceError(err, "CT_CFG_UNREADABLE")) {
      print(err.message);
      return 2;
    }
    if (isColdtraceError(err)) {
      print(`error: ${err.message}`);
      return 1;
    }
    if (
      err instanceof Error &&
      err.name === "TypeError" &&
      "code" in err &&
      String(err.code).startsWith("ERR_PARSE_ARGS")
    ) {
      print(`error: ${err.message}`);
      print(usage);
      return 2;
    }
    throw err;
  }
}

/**
 * Finds the Modbus slave ids on a bus and what their registers hold. A slave that answers
 * with an exception is present too (it just has no such register).
 */
export async function scanCommand(args: ScanArgs | readonly string[], out: Out): Promise<number> {
  const print = lineWriter(out);
  return guarded(print, SCAN_USAGE, async () => {
    const a = Array.isArray(args) ? scanArgsFromArgv(args as readonly string[]) : (args as ScanArgs);
    if (a === "help") {
      print(SCAN_USAGE);
      return 0;
    }
    const fromId = a.fromId ?? 1;
    const toId = a.toId ?? 247;
    // Modbus spec: 1–247 are slave addresses (0 is broadcast, 248–255 reserved).
    if (!Number.isInteger(fromId) || !Number.isInteger(toId) || fromId < 1 || toId > 247 || fromId > toId)
      throw new UsageError(`--from/--to: expected 1 ≤ from ≤ to ≤ 247, got ${fromId}…${toId}`);
    const ranges = parseRegisterRanges(a.registers ?? "0-1");
    const bus = busFor(a, a.timeoutMs ?? 200);
    const where =
      bus.type === "modbus-rtu" ? `${bus.port} ${bus.baudRate} ${bus.parity}` : `${bus.host}:${bus.port}`;
    print(
      `scanning ${where}, slave ids ${fromId}–${toId}, registers ${a.registers ?? "0-1"}, timeout ${bus.timeoutMs} ms`,
    );
    const client = await connectModbus(bus);
    const found: number[] = [];
    const total = toId - fromId + 1;
    try {
      for (let id = fromId; id <= toId; id++) {
        client.setID(id);
        const lines: string[] = [];
        let present = false;
        for (const { start, count } of ranges) {
          for (const fc of [3, 4] as const) {
            const label = `FC${fc} ${start}${count > 1 ? `-${start + count - 1}` : ""}`;
            try {
              const r =
                fc === 3
                  ? await client.readHoldingRegisters(start, count)
                  : await client.readInputRegisters(start, count);
              present = true;
              lines.push(`  ${label}: ${hex(r.data)}`);
            } catch (err) {
              const code = modbusCodeOf(err);
              // Exceptions 0x0A/0x0B come from a TCP gateway saying nobody is behind this id.
              if (code !== undefined && code !== 0x0a && code !== 0x0b) {
                present = true;
                lines.push(
                  `  ${label}: exception ${code}${code === 1 ? " (illegal function)" : code === 2 ? " (illegal data address)" : ""}`,
                );
              } else if (!present) {
                break; // silence on the first request: nobody at this id
              } else {
                lines.push(`  ${label}: no answer`);
              }
            }
          }
          if (!present) break;
        }
        if (present) {
          found.push(id);
          print(`slave ${id}: answers`);
          for (const l of lines) print(l);
        }
        const done = id - fromId + 1;
        if (done % 10 === 0 && done < total) print(`… ${done}/${total} ids scanned, ${found.length} found`);
      }
    } finally {
      await closeClient(client);
    }
    print(
      found.length > 0
        ? `done: ${found.length} slave(s) found: ${found.join(", ")}`
        : "done: no slave answered (check A/B wiring, termination, baud rate and parity)",
    );
    return found.length > 0 ? 0 : 1;
  });
}

/** The `buses:` section of an agent configuration file, problems named by line and path. */
function loadBuses(file: string): BusConfig[] {
  const yaml = readYamlFile(file);
  // Only buses[] matters here; the other sections are the agent's business (check-config).
  const schema = z.object({ buses: busesSchema });
  const r = schema.safeParse(yaml.value);
  if (!r.success) {
    const issues = configIssues(r.error, yaml.value, (path) => yaml.locate(path));
    throw new ColdtraceError("CT_CFG_INVALID", `${file}:\n${formatConfigIssues(issues)}`, { file, issues });
  }
  return r.data.buses;
}

/**
 * Reads one probe once: raw registers, the value decoded as configured, and the register pair
 * decoded as int32/uint32/float32 in every word order.
 */
export async function readCommand(args: ReadArgs | readonly string[], out: Out): Promise<number> {
  const print = lineWriter(out);
  return guarded(print, READ_USAGE, async () => {
    const a = Array.isArray(args) ? readArgsFromArgv(args as readonly string[]) : (args as ReadArgs);
    if (a === "help") {
      print(READ_USAGE);
      return 0;
    }
    let bus: ModbusRtuBusConfig | ModbusTcpBusConfig;
    let probe: ModbusProbeConfig;
    if (a.config !== undefined || a.probe !== undefined) {
      if (a.config === undefined || a.probe === undefined)
        throw new UsageError("--config and --probe go together");
      const buses = loadBuses(a.config);
      const owner = buses.find((b) => b.probes.some((p) => p.id === a.probe));
      if (!owner) throw new UsageError(`probe ${a.probe} is not in ${a.config}`);
      if (owner.type === "serial-ascii")
        throw new UsageError(
          `probe ${a.probe} is on serial-ascii bus ${owner.id}: watch its lines with a terminal instead`,
        );
      bus = a.timeoutMs !== undefined ? { ...owner, timeoutMs: a.timeoutMs } : owner;
      probe = owner.probes.find((p) => p.id === a.probe)!;
    } else {
      if (a.slaveId === undefined || a.register === undefined)
        throw new UsageError("give --slave and --register");
      bus = busFor(a, a.timeoutMs ?? 1000);
      const parsed = modbusProbeSchema.safeParse({
        id: "commissioning",
        unit: "commissioning",
        slaveId: a.slaveId,
        register: a.register,
        ...(a.function !== undefined ? { function: a.function } : {}),
        ...(a.type !== undefined ? { type: a.type } : {}),
        ...(a.wordOrder !== undefined ? { wordOrder: a.wordOrder } : {}),
        ...(a.scale !== undefined ? { scale: a.scale } : {}),
        ...(a.offset !== undefined ? { offset: a.offset } : {}),
      });
      if (!parsed.success)
        throw new UsageError(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      probe = parsed.data;
    }
    // Only the registers the encoding needs: a 16-bit probe may sit on a device's last register.
    const count = registerCount(probe.type);
    const start = probe.register;
    const client = await connectModbus(bus);
    try {
      client.setID(probe.slaveId);
      let data: number[];
      try {
        data = (
          probe.function === 3
            ? await client.readHoldingRegisters(start, count)
            : await client.readInputRegisters(start, count)
        ).data;
      } catch (err) {
        const code = modbusCodeOf(err);
        print(
          `slave ${probe.slaveId} FC${probe.function} ${start}+${count}: ${code !== undefined ? `exception ${code}` : `no answer (${(err as Error).message})`}`,
        );
        if (count === 2 && code === 2)
          print(`  (register ${start + 1} may not exist: is the probe really ${probe.type}, a 32-bit type?)`);
        return 1;
      }
      const bytes = registersToBytes(data);
      print(
        `slave ${probe.slaveId} FC${probe.function} register${count > 1 ? `s ${start}-${start + count - 1}` : ` ${start}`}: ${hex(data)}`,
      );
      const d = decodeProbeValue(bytes, 0, probe);
      print(
        `as configured (${probe.type} ${probe.wordOrder} ×${probe.scale} +${probe.offset}): raw ${d.raw} → ${d.tempC ?? "–"} °C, quality ${d.quality}${
          d.implausible ? " (a float no probe reports: wrong word order?)" : ""
        }`,
      );
      if (needsOrderHint(probe, d)) print(`  → ${orderHint(plausibleOrders(bytes, 0, probe))}`);
      if (count === 1) {
        print(
          `register as int16 ${decodeRaw(bytes, 0, "int16", "ABCD").value}, uint16 ${decodeRaw(bytes, 0, "uint16", "ABCD").value}, byte-swapped int16 ${decodeRaw(bytes, 0, "int16", "BADC").value}`,
        );
        return 0;
      }
      print(
        `first register: int16 ${decodeRaw(bytes, 0, "int16", "ABCD").value}, uint16 ${decodeRaw(bytes, 0, "uint16", "ABCD").value}, byte-swapped int16 ${decodeRaw(bytes, 0, "int16", "BADC").value}`,
      );
      print("pair in every word order (scale not applied):");
      print("  order  int32         uint32        float32");
      for (const r of decodeAllOrders(bytes)) {
        const mark = r.order === probe.wordOrder ? "  ← configured" : "";
        print(
          `  ${r.order}   ${String(r.int32).padEnd(13)} ${String(r.uint32).padEnd(13)} ${Number.isFinite(r.float32) ? Number(r.float32.toPrecision(7)) : r.float32}${mark}`,
        );
      }
      return 0;
    } finally {
      await closeClient(client);
    }
  });
}
