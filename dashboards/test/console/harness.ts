/**
 * What the console's browser tests, the screenshot script and the benchmark share: a real
 * gateway (embedded broker with agent credentials, SQLite in a temp folder, the console's
 * build) on free ports, simulated fleets (simulators/ `Fleet`, the engine of
 * `coldtrace-sim fleet`), and Debian's Chromium driven by playwright-core with a fresh profile.
 *
 *   startStack() ─▶ gateway :0 ─▶ fleets publish births + telemetry over MQTT, as agents do
 *   openBrowser() ─▶ /usr/bin/chromium --headless --no-sandbox … --user-data-dir=<temp>
 *   signIn(page)  ─▶ the sign-in page with the stage-1 API token, in zh-CN or en
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  builtinExtensions,
  CredentialStore,
  type ExtensionFactory,
  type GatewayConfigInput,
  type GatewayRuntime,
  generateToken,
  parseGatewayConfig,
  startGateway,
} from "@coldtrace/gateway";
import { type ExcursionInjection, Fleet } from "@coldtrace/simulators";
import pino from "pino";
import { type BrowserContext, chromium, type Page } from "playwright-core";

export const MIN = 60_000;
export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];

export interface FleetSpec {
  prefix: string;
  sites: number;
  units: number;
  probes: number;
  /** Simulated history before now (default 2 h). */
  historyMs?: number;
  excursions?: ExcursionInjection[];
  baseTempC?: number;
}

export interface Stack {
  gw: GatewayRuntime;
  url: string;
  token: string;
  fleets: Map<string, Fleet>;
  dir: string;
  /** Start another simulated edge agent fleet (own prefix, own credentials). */
  addFleet(spec: FleetSpec): Promise<Fleet>;
  api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

/** Poll a condition (a page or the API), failing with `what` after timeoutMs. */
export async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function startStack(
  opts: {
    console?: GatewayConfigInput["console"];
    intervalMs?: number;
    log?: pino.Level;
    /** More extensions after the built-in ones (the benchmark's probe). */
    extensions?: ExtensionFactory[];
  } = {},
): Promise<Stack> {
  const dir = await mkdtemp(path.join(tmpdir(), "ct-console-"));
  const { token, hash } = generateToken();
  const credentials = new CredentialStore();
  const config = parseGatewayConfig(
    {
      gatewayId: `gw-${path.basename(dir).slice(-6)}`,
      broker: { host: "127.0.0.1", port: 0 },
      api: { host: "127.0.0.1", port: 0, tokens: [{ name: "console-test", hash }] },
      ingest: { batchMaxDelayMs: 2 },
      storage: { records: { backend: "sqlite", path: "ct.db" }, readings: { backend: "sqlite" } },
      ...(opts.console ? { console: opts.console } : {}),
    },
    "console-harness",
    dir,
  );
  const gw = await startGateway({
    config,
    log: pino({ level: opts.log ?? "warn" }),
    credentials,
    extensions: [...builtinExtensions(config), ...(opts.extensions ?? [])],
  });
  const url = gw.apiUrl as string;
  const fleets = new Map<string, Fleet>();
  const intervalMs = opts.intervalMs ?? MIN;

  const addFleet = async (spec: FleetSpec): Promise<Fleet> => {
    const secrets = new Map<string, string>();
    for (let s = 1; s <= spec.sites; s++) {
      const siteId = `${spec.prefix}-${s}`;
      const agentId = `${siteId}-pi`;
      secrets.set(
        agentId,
        (await credentials.add({ username: agentId, role: "agent", siteIds: [siteId], agentId })).secret,
      );
    }
    const startAt = Math.floor((Date.now() - (spec.historyMs ?? 2 * 60 * MIN)) / intervalMs) * intervalMs;
    const fleet = new Fleet({
      url: gw.brokerUrl,
      sites: spec.sites,
      units: spec.units,
      probes: spec.probes,
      sitePrefix: spec.prefix,
      intervalMs,
      startAt,
      ...(spec.baseTempC === undefined ? {} : { baseTempC: spec.baseTempC }),
      ...(spec.excursions ? { excursions: spec.excursions } : {}),
      credentials: (a) => ({ username: a.agentId, password: secrets.get(a.agentId) as string }),
    });
    await fleet.start();
    fleets.set(spec.prefix, fleet);
    return fleet;
  };

  const api = async <T>(method: string, p: string, body?: unknown) => {
    const res = await fetch(`${url}/api/v1${p}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as T };
  };

  return {
    gw,
    url,
    token,
    fleets,
    dir,
    addFleet,
    api,
    async stop() {
      for (const f of fleets.values()) await f.stop().catch(() => {});
      await gw.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Every reading a fleet has sent is stored (and so on its way to the browsers). */
export async function settled(stack: Stack): Promise<void> {
  let sent = 0;
  for (const f of stack.fleets.values()) sent += f.readingsSent;
  await until(() => stack.gw.metrics.readingsStored >= sent, "readings stored");
  await stack.gw.ingest.idle();
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Debian's Chromium with a fresh profile (`--user-data-dir` is the temp folder). */
export async function openBrowser(): Promise<Browser> {
  const profile = await mkdtemp(path.join(tmpdir(), "ct-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    locale: "en-US",
    timezoneId: "Europe/Berlin",
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Sign in through the sign-in page, in a language, and land on the overview. */
export async function signIn(page: Page, stack: Stack, language: "zh-CN" | "en"): Promise<void> {
  // Signed out first (the profile may hold a token), then the console sends us to sign in.
  await page.goto(`${stack.url}/console/sign-in`);
  await page.evaluate(() => localStorage.clear());
  await page.goto(`${stack.url}/console/`);
  await page.waitForURL(/\/console\/sign-in$/);
  await page.locator("select").first().selectOption(language);
  await page.locator('input[name="token"]').fill(stack.token);
  await page.locator('button[type="submit"]').click();
  await page.waitForURL(/\/console\/$/);
  await page.locator(".conn-live").waitFor();
}
