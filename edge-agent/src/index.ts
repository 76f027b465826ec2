/**
 * @coldtrace/edge-agent: the agent on Raspberry Pi-class boxes. Polls probes (acquisition/),
 * stores every reading in a durable outbox (outbox/), publishes it over MQTT per the wire
 * contract (publisher/), drives a local alarm relay (alarm/), all wired by the runtime
 * (agent/) from one YAML file (config/). The CLI is cli/main.ts.
 */
export * from "./agent/index.ts";
export * from "./alarm/index.ts";
export * from "./clock.ts";
export * from "./config/index.ts";
export * from "./outbox/index.ts";
export * from "./publisher/index.ts";
export * from "./remote/index.ts";
export * from "./timekeeping/index.ts";
