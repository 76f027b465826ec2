/** @coldtrace/testkit — real services for tests, from env vars with local defaults. */
export * from "./broker.ts";
export * from "./influxd.ts";
export * from "./ports.ts";
export * from "./postgres.ts";
export * from "./pty.ts";
export * from "./services.ts";
export * from "./tls.ts";
