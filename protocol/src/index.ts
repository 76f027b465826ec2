/**
 * @coldtrace/protocol — the single wire contract shared by the edge agent, the gateway, the
 * simulators and the flows. Topics, payload schemas (zod, with inferred types), the codec and
 * the one error class. No I/O.
 */
export * from "./codec.ts";
export * from "./errors.ts";
export * from "./freeze.ts";
export * from "./json-schema.ts";
export * from "./schemas/agent.ts";
export * from "./schemas/agent-config.ts";
export * from "./schemas/agent-remote.ts";
export * from "./schemas/common.ts";
export * from "./schemas/gateway.ts";
export * from "./schemas/movement.ts";
export * from "./schemas/notify.ts";
export * from "./time.ts";
export * from "./topics.ts";
