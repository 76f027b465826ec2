/**
 * Where tests get their real services. Every integration test in every workspace goes through
 * here, so there is one place that knows the URLs, the env vars that override them, and what
 * happens when a service is missing:
 *
 * - on a user's machine without the service: the test suite is skipped with a one-line reason;
 * - under CI=true: `requireService` throws, and the suite fails loudly.
 *
 *   COLDTRACE_TEST_MQTT_URL   external broker (Mosquitto)   default mqtt://127.0.0.1:1883
 *   COLDTRACE_TEST_PG_URL     PostgreSQL                    default postgres://postgres@127.0.0.1:5432/test
 *   COLDTRACE_TEST_INFLUXD    influxd binary to start       default influxd on PATH
 */
import { execFileSync } from "node:child_process";
import net from "node:net";
import { ColdtraceError } from "@coldtrace/protocol";

export const isCI = process.env.CI === "true" || process.env.CI === "1";

export interface ServiceStatus {
  name: string;
  available: boolean;
  /** One line: why it is not available. */
  reason: string;
}

export function mqttUrl(): string {
  return process.env.COLDTRACE_TEST_MQTT_URL ?? "mqtt://127.0.0.1:1883";
}

export function postgresUrl(): string {
  return process.env.COLDTRACE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
}

export function influxdBinary(): string {
  return process.env.COLDTRACE_TEST_INFLUXD ?? "influxd";
}

/** Resolves true when a TCP connection to host:port opens within timeoutMs. */
export function canConnect(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

function hostPort(url: string, defaultPort: number): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname || "127.0.0.1", port: u.port ? Number(u.port) : defaultPort };
}

function onPath(binary: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${JSON.stringify(binary)}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

async function tcpService(name: string, url: string, defaultPort: number): Promise<ServiceStatus> {
  const { host, port } = hostPort(url, defaultPort);
  const ok = await canConnect(host, port);
  return { name, available: ok, reason: ok ? "" : `${name} not reachable at ${host}:${port}` };
}

/** A program the tests run: on PATH (or at its absolute path), from a Debian package. */
async function binaryService(name: string, binary: string, debianPackage: string): Promise<ServiceStatus> {
  const ok = onPath(binary);
  return { name, available: ok, reason: ok ? "" : `${binary} not found (apt-get install ${debianPackage})` };
}

export const probes = {
  mosquitto: () => tcpService("Mosquitto", mqttUrl(), 1883),
  postgres: () => tcpService("PostgreSQL", postgresUrl(), 5432),
  influxd: () => binaryService("influxd", influxdBinary(), "influxdb"),
  openssl: () => binaryService("openssl", "openssl", "openssl"),
  socat: () => binaryService("socat", "socat", "socat"),
  chromium: () => binaryService("Chromium", "/usr/bin/chromium", "chromium"),
} as const;

export type ServiceName = keyof typeof probes;

/**
 * Check a service before a suite. Use with vitest's skipIf:
 *
 *   const pg = await requireService("postgres");
 *   describe.skipIf(!pg.available)(`PostgreSQL store ${pg.reason}`, () => { … });
 *
 * Under CI=true a missing service throws CT_SERVICE_MISSING, failing the test file.
 */
export async function requireService(name: ServiceName): Promise<ServiceStatus> {
  const status = await probes[name]();
  if (!status.available) {
    if (isCI) {
      throw new ColdtraceError(
        "CT_SERVICE_MISSING",
        `CI=true but ${status.reason}; .ci/run must provide it`,
        {
          service: name,
        },
      );
    }
    console.warn(`skipping: ${status.reason}`);
  }
  return status;
}
