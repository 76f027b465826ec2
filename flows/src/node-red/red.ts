/**
 * The part of the Node-RED 5 node API our nodes use (https://nodered.org/docs/creating-nodes/),
 * typed here rather than through the stale @types/node-red, plus the seams every Coldtrace
 * node shares: the clock, the durable store file and a logger adapter.
 */
import path from "node:path";

export interface NodeMessage {
  _msgid?: string;
  topic?: string;
  payload?: unknown;
  req?: {
    params?: Record<string, string>;
    query?: Record<string, string>;
    headers: Record<string, string | undefined>;
    body?: unknown;
  };
  res?: unknown;
  statusCode?: number;
  headers?: Record<string, string>;
  [key: string]: unknown;
}

export type Send = (msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null>) => void;
export type Done = (err?: Error) => void;

export interface Node {
  id: string;
  name?: string;
  on(event: "input", fn: (msg: NodeMessage, send: Send, done: Done) => void | Promise<void>): void;
  on(event: "close", fn: (removed: boolean, done: () => void) => void): void;
  send(msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null>): void;
  status(
    s:
      | { fill?: "red" | "green" | "yellow" | "blue" | "grey"; shape?: "ring" | "dot"; text?: string }
      | Record<string, never>,
  ): void;
  log(msg: unknown): void;
  warn(msg: unknown): void;
  error(msg: unknown, m?: NodeMessage): void;
  debug(msg: unknown): void;
}

export interface NodeDef {
  id: string;
  type: string;
  name?: string;
  [key: string]: unknown;
}

export interface NodeAPI {
  nodes: {
    createNode(node: object, def: NodeDef): void;
    registerType(
      type: string,
      ctor: (this: Node, def: NodeDef) => void,
      opts?: {
        settings?: Record<string, { value: unknown; exportable?: boolean }>;
        credentials?: Record<string, { type: string }>;
      },
    ): void;
    getNode(id: string): unknown;
  };
  settings: { userDir?: string; [key: string]: unknown };
  log: { info(m: unknown): void; warn(m: unknown): void; error(m: unknown): void };
}

export interface Clock {
  now(): number;
}

/**
 * The clock of every Coldtrace node: `coldtraceEscalationClock` from the Node-RED settings when
 * given (tests pass a controllable clock to RED.init), else the system clock.
 */
export function clockOf(RED: NodeAPI): Clock {
  const c = RED.settings.coldtraceEscalationClock as Clock | undefined;
  return c && typeof c.now === "function" ? c : { now: () => Date.now() };
}

/** The durable store of the Coldtrace nodes: a node property, else coldtrace-flows.db in userDir. */
export function storePath(RED: NodeAPI, configured: unknown): string {
  if (typeof configured === "string" && configured.trim() !== "" && !configured.startsWith("${")) {
    return path.resolve(RED.settings.userDir ?? ".", configured);
  }
  return path.join(RED.settings.userDir ?? ".", "coldtrace-flows.db");
}

/** A required node property (set from an environment variable in the flow file). */
export function required(def: NodeDef, name: string, env: string): string {
  const v = def[name];
  if (typeof v !== "string" || v.trim() === "" || v.startsWith("${")) {
    throw new Error(`${def.type} ${def.name || def.id}: ${name} is not set (environment variable ${env})`);
  }
  return v.trim();
}

/** An optional node property; `${VAR}` left unresolved (variable not set) counts as unset. */
export function optional(def: NodeDef, name: string): string | undefined {
  const v = def[name];
  if (typeof v !== "string" || v.trim() === "" || v.startsWith("${")) return undefined;
  return v.trim();
}

/** A numeric property with a default and bounds. */
export function numberProp(def: NodeDef, name: string, fallback: number, min: number): number {
  const raw = optional(def, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min)
    throw new Error(
      `${def.type} ${def.name || def.id}: ${name} must be a number ≥ ${min}, got ${JSON.stringify(raw)}`,
    );
  return n;
}
