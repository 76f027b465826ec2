/** Probe drivers behind the `ProbeDriver` seam: Modbus RTU/TCP and serial ASCII. */
export * from "./modbus.ts";
export * from "./serial-ascii.ts";
export * from "./types.ts";
