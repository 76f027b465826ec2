/** Probe simulators: Modbus RTU on a serial port/PTY, Modbus TCP, serial ASCII; scenario files. */
export * from "./ascii.ts";
export * from "./bus.ts";
export * from "./crc.ts";
export * from "./modbus-slave.ts";
export * from "./rtu.ts";
export * from "./scenario.ts";
export * from "./tcp.ts";
export * from "./values.ts";
