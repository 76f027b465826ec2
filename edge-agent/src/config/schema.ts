/**
 * The agent's configuration: the document schema from the wire contract
 * (@coldtrace/protocol schemas/agent-config.ts, shared with remote configuration) and the
 * *effective* configuration the agent runs with, whose derived values are filled in.
 */
import type { AgentConfigParsed } from "@coldtrace/protocol";

export {
  type AgentConfigInput as ConfigInput,
  agentConfigSchema as configSchema,
  type LogLevel,
  logLevel,
} from "@coldtrace/protocol";

/** The effective configuration: validated, defaults applied, derived values filled in. */
export type AgentConfig = Omit<AgentConfigParsed, "outbox"> & {
  outbox: AgentConfigParsed["outbox"] & { path: string; maxReadings: number };
};
export type UnitConfig = AgentConfig["units"][number];
export type AlarmOutputConfig = AgentConfig["localAlarm"]["outputs"][number];
export type MqttConfig = AgentConfig["mqtt"];
