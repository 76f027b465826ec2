/**
 * Fleet generator entry points: the `Fleet` class for tests and benchmarks, and
 * `fleetCommand(argv)` for `coldtrace-sim fleet`:
 *
 *   coldtrace-sim fleet --url mqtt://127.0.0.1:1883 --sites 3 --units 4 --probes 2 --speed 60
 *       [--interval-ms 10000] [--prefix fleet] [--password <shared agent password>]
 *       [--start <ISO time | -90m | -6h | -7d>]
 *       [--excursion-after-min 10 --excursion-minutes 20 --excursion-temp 14]
 *
 * Simulated time never runs ahead of the wall clock (a gateway sets such readings aside as an
 * agent clock error): faster than 1× it starts in the past, by default as far back as it can
 * catch up with in --duration-s (or one hour), then goes on at 1×.
 *
 * Agents log in with username = agent id (`{prefix}-{n}-pi`), the convention of the gateway's
 * credentials (`coldtrace-gateway credentials add --agent … --site …`).
 */
import { parseArgs } from "node:util";
import { Fleet, type FleetOptions } from "./fleet.ts";

export * from "./fleet.ts";

const USAGE = `usage: coldtrace-sim fleet --url <mqtt url> [--sites 3] [--units 4] [--probes 2] [--speed 60]
  [--interval-ms 10000] [--prefix fleet] [--password <secret> | env COLDTRACE_MQTT_PASSWORD] [--duration-s <wall seconds>]
  [--start <ISO time | -90m | -6h | -7d>]
  [--excursion-after-min <sim minutes> --excursion-minutes 20 --excursion-temp 14]
Simulated time never runs ahead of the clock: above 1× it starts in the past (by default as far
back as it catches up with in --duration-s, or one hour) and goes on at 1× once it reaches now.`;

/** `--start`: an ISO time, or an offset back from now like -90m, -6h, -7d. */
function startTime(value: string, now: number): number {
  const rel = /^-(\d+(?:\.\d+)?)([mhd])$/.exec(value);
  if (rel) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as "m" | "h" | "d"];
    return now - Number(rel[1]) * unit;
  }
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new Error(`--start: expected an ISO time or -90m / -6h / -7d, got ${JSON.stringify(value)}`);
  if (t > now) throw new Error(`--start: ${value} is in the future; a gateway sets such readings aside`);
  return t;
}

function int(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`--${name}: expected a positive number, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * Run the fleet from command-line arguments until SIGINT/SIGTERM (or --duration-s). Returns
 * the process exit code; never exits itself (the CLI does).
 */
export async function fleetCommand(
  argv: string[],
  io: { out: (line: string) => void; err: (line: string) => void } = {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
  },
): Promise<number> {
  let fleet: Fleet;
  let durationS: number | undefined;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        url: { type: "string" },
        sites: { type: "string" },
        units: { type: "string" },
        probes: { type: "string" },
        speed: { type: "string" },
        "interval-ms": { type: "string" },
        prefix: { type: "string" },
        password: { type: "string" },
        "duration-s": { type: "string" },
        start: { type: "string" },
        "excursion-after-min": { type: "string" },
        "excursion-minutes": { type: "string" },
        "excursion-temp": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help || !values.url) {
      io.out(USAGE);
      return values.help ? 0 : 2;
    }
    const password = values.password ?? process.env.COLDTRACE_MQTT_PASSWORD;
    const opts: FleetOptions = {
      url: values.url,
      sites: int("sites", values.sites, 3),
      units: int("units", values.units, 4),
      probes: int("probes", values.probes, 2),
      intervalMs: int("interval-ms", values["interval-ms"], 10_000),
      sitePrefix: values.prefix ?? "fleet",
      ...(password === undefined ? {} : { credentials: (a) => ({ username: a.agentId, password }) }),
    };
    if (values["excursion-after-min"] !== undefined) {
      opts.excursion = {
        site: 0,
        unit: 0,
        afterMs: int("excursion-after-min", values["excursion-after-min"], 10) * 60_000,
        durationMs: int("excursion-minutes", values["excursion-minutes"], 20) * 60_000,
        tempC: Number(values["excursion-temp"] ?? 14),
      };
    }
    durationS = values["duration-s"] === undefined ? undefined : int("duration-s", values["duration-s"], 1);
    const speed = int("speed", values.speed, 60);
    const now = Date.now();
    // Faster than 1×: start as far back as the run catches up with (then it goes on at 1×).
    const startAt =
      values.start !== undefined
        ? startTime(values.start, now)
        : now - (speed - 1) * (durationS ?? 3600) * 1000;
    const intervalMs = opts.intervalMs as number;
    opts.startAt = Math.floor(startAt / intervalMs) * intervalMs;
    fleet = new Fleet(opts);
    await fleet.start();
    io.out(
      `fleet: ${fleet.agents.length} agents, ${opts.sites * opts.units * opts.probes} probes, ` +
        `${fleet.readingsPerSimSecond * speed} readings/s at ${speed}× on ${opts.url}`,
    );
    for (const a of fleet.agents)
      io.out(`  agent ${a.agentId} site ${a.siteId} units ${a.unitIds.join(",")}`);
    io.out(`  simulated time starts at ${new Date(opts.startAt).toISOString()}`);
    fleet.runRealtime({
      speed,
      notAheadOfClock: true,
      onCaughtUp: () => io.out("fleet: simulated time reached now; going on at 1×"),
      onError: (err) => io.err(`fleet: ${(err as Error).message}`),
    });
  } catch (err) {
    io.err(`fleet: ${(err as Error).message}`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
    if (durationS !== undefined) setTimeout(done, durationS * 1000);
  });
  await fleet.stop();
  io.out(`fleet: ${fleet.readingsSent} readings in ${fleet.batchesSent} batches`);
  return 0;
}
