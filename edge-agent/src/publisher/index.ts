/** The MQTT session that drains the outbox (see publisher.ts). */
export * from "./publisher.ts";
