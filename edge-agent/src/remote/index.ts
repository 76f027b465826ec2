/** Remote configuration: pushed configurations validated, applied on trial, rolled back by the agent itself. */
export * from "./hash.ts";
export * from "./rules.ts";
export * from "./store.ts";
export * from "./supervisor.ts";
