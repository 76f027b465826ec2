/** The agent runtime (see agent.ts) and its systemd integration (sd-notify.ts). */
export * from "./agent.ts";
export * from "./sd-notify.ts";
