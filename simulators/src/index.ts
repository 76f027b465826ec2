/** @coldtrace/simulators — probe simulators (test peers with faults on demand) and scenarios. */
export * from "./probes/index.ts";
export * from "./fleet/index.ts";
