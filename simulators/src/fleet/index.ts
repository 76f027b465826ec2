/**
 * Fleet generator entry points: the `Fleet` class for tests and benchmarks, and
 * `fleetCommand(argv)` for `coldtrace-sim fleet`:
 *
 *   coldtrace-sim fleet --url mqtt://127.0.0.1:1883 --sites 3 --units 4 --probes 2 --speed 60
 *       [--interval-ms 10000] [--prefix fleet] [--password <shared agent password>]
 *       [--excursion-after-min 10 --excursion-minutes 20 --excursion-temp 14]
 *
 * Agents log in with username = agent id (`{prefix}-{n}-pi`), the convention of the gateway's
 * credentials (`coldtrace-gateway credentials add --agent … --site …`).
 */
import { parseArgs } from "node:util";
import { Fleet, type FleetOptions } from "./fleet.ts";

export * from "./fleet.ts";

const USAGE = `usage: coldtrace-sim fleet --url <mqtt url> [--sites 3] [--units 4] [--probes 2] [--speed 60]
  [--interval-ms 10000] [--prefix fleet] [--password <secret>] [--duration-s <wall seconds>]
  [--excursion-after-min <sim minutes> --excursion-minutes 20 --excursion-temp 14]`;

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
    const password = values.password;
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
    fleet = new Fleet(opts);
    durationS = values["duration-s"] === undefined ? undefined : int("duration-s", values["duration-s"], 1);
    const speed = int("speed", values.speed, 60);
    await fleet.start();
    io.out(
      `fleet: ${fleet.agents.length} agents, ${opts.sites * opts.units * opts.probes} probes, ` +
        `${fleet.readingsPerSimSecond * speed} readings/s at ${speed}× on ${opts.url}`,
    );
    for (const a of fleet.agents)
      io.out(`  agent ${a.agentId} site ${a.siteId} units ${a.unitIds.join(",")}`);
    fleet.runRealtime({ speed, onError: (err) => io.err(`fleet: ${(err as Error).message}`) });
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
