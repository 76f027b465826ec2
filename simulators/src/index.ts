/** @coldtrace/simulators — probe simulators (test peers with faults on demand), scenarios, and the fleet generator. */
export * from "./fleet/index.ts";
export * from "./probes/index.ts";
