/**
 * @coldtrace/testkit — real services for tests, from env vars with local defaults. The import
 * graph for the layout tests is its own entry (`@coldtrace/testkit/import-graph`): it loads
 * the TypeScript compiler, which no other test needs.
 */
export * from "./bench.ts";
export * from "./broker.ts";
export * from "./influxd.ts";
export * from "./ports.ts";
export * from "./postgres.ts";
export * from "./pty.ts";
export * from "./services.ts";
export * from "./tls.ts";
