/** The durable outbox (see outbox.ts). */
export * from "./outbox.ts";
