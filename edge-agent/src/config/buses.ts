/**
 * Configuration of the agent's acquisition: the buses and the probes behind each. The schema
 * is part of the wire contract since configurations can be pushed over MQTT, so it lives in
 * @coldtrace/protocol (schemas/agent-config.ts); this module names the agent's view of it.
 */
export {
  type AsciiProbeConfig,
  asciiProbeSchema,
  type BusConfig,
  type BusConfigInput,
  busesSchema,
  busSchema,
  type ModbusProbeConfig,
  type ModbusRtuBusConfig,
  type ModbusTcpBusConfig,
  modbusProbeSchema,
  modbusRtuBusSchema,
  modbusTcpBusSchema,
  type ProbeConfig,
  type RegisterType,
  registerCount,
  registerType,
  type SerialAsciiBusConfig,
  serialAsciiBusSchema,
  type WordOrder,
  wordOrder,
} from "@coldtrace/protocol";
