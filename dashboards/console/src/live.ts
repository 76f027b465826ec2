/**
 * The live stream from the gateway (GET /api/v1/console/live, server-sent events), one per
 * browser tab. Pages subscribe to the event names they show; `connection` says whether the
 * page is live, and `epoch` changes whenever the page must reload its data (a gap the gateway
 * could not replay, or a gateway restart).
 *
 *   connecting ─ open ─▶ live ─ error / silence > 2.5 × heartbeat ─▶ lost ─ retry ─▶ live …
 *
 * The `eventsource` package is the standard EventSource with a `fetch` hook, which adds the
 * stage-1 token header (a browser's EventSource cannot send one). It resends Last-Event-ID on
 * reconnect, so the gateway replays what was missed.
 */
import { signal } from "@preact/signals";
import { EventSource } from "eventsource";
import { getToken } from "./token.ts";

export type Connection = "connecting" | "live" | "lost";
export const connection = signal<Connection>("connecting");
/** Bumped when data shown may be stale: pages reload when it changes. */
export const epoch = signal(0);

type Handler = (data: unknown) => void;
const handlers = new Map<string, Set<Handler>>();
const NAMES = ["readings", "unit", "alarm", "excursion", "lot", "eligibility", "agent"] as const;

let source: EventSource | undefined;
let heartbeatMs = 15_000;
let watchdog: ReturnType<typeof setTimeout> | undefined;
let retry: ReturnType<typeof setTimeout> | undefined;
/** A new EventSource after a loss has no Last-Event-ID: the page reloads its data on hello. */
let reloadOnHello = false;

export function on(name: (typeof NAMES)[number], fn: Handler): () => void {
  let set = handlers.get(name);
  if (!set) {
    set = new Set();
    handlers.set(name, set);
  }
  set.add(fn);
  return () => set.delete(fn);
}

function dispatch(name: string, data: unknown): void {
  for (const fn of handlers.get(name) ?? []) fn(data);
}

function heard(): void {
  clearTimeout(watchdog);
  watchdog = setTimeout(() => {
    // Nothing, not even a ping: the connection is dead without saying so.
    lost();
    reopen(0);
  }, heartbeatMs * 2.5);
}

function lost(): void {
  connection.value = "lost";
}

function reopen(delayMs: number): void {
  reloadOnHello = true;
  source?.close();
  source = undefined;
  clearTimeout(retry);
  retry = setTimeout(open, delayMs);
}

function open(): void {
  const token = getToken();
  if (!token) return;
  const es = new EventSource("/api/v1/console/live", {
    fetch: (input, init) =>
      fetch(input, { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } }),
  });
  source = es;
  es.addEventListener("hello", (e) => {
    const hello = JSON.parse(e.data) as { heartbeatMs: number };
    heartbeatMs = hello.heartbeatMs;
    connection.value = "live";
    heard();
    // The library's own reconnects send Last-Event-ID and the gateway replays what was missed
    // (or says `resync`); a fresh EventSource cannot, so the page reloads.
    if (reloadOnHello) {
      reloadOnHello = false;
      epoch.value++;
    }
  });
  es.addEventListener("ping", heard);
  es.addEventListener("resync", () => {
    heard();
    epoch.value++;
  });
  for (const name of NAMES) {
    es.addEventListener(name, (e) => {
      heard();
      dispatch(name, JSON.parse(e.data));
    });
  }
  es.addEventListener("error", (e) => {
    lost();
    const code = (e as { code?: number }).code;
    // The standard EventSource gives up on an HTTP error; keep trying (the gateway may be
    // restarting) unless the token is refused.
    if (es.readyState === es.CLOSED && code !== 401) reopen(2000);
  });
}

export function startLive(): void {
  if (!source) open();
}

export function stopLive(): void {
  source?.close();
  source = undefined;
  clearTimeout(watchdog);
  clearTimeout(retry);
  connection.value = "connecting";
}
