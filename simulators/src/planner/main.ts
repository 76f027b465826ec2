/**
 * Run the reference planner consumer and print every change:
 *
 *   node simulators/src/planner/main.ts [--url mqtt://127.0.0.1:1884] [--site store-12]
 *       [--username planner --password <secret>]   (or COLDTRACE_MQTT_USERNAME / _PASSWORD)
 *
 * Also `coldtrace-sim planner …`.
 */
import { formatChange, type PlannerChange, startPlannerConsumer } from "./index.ts";

/**
 * While an excursion goes on, the retained state is republished as the remaining budget
 * shrinks. The table keeps every state; the printout shows decisions, quantities and whole
 * minutes of budget only (`--verbose` prints everything).
 */
function worthPrinting(c: PlannerChange): boolean {
  if (verbose || c.kind !== "eligibility" || !c.previous || !c.row.eligibility) return true;
  const [a, b] = [c.previous, c.row.eligibility];
  const minute = (x: number | null) => (x === null ? null : Math.floor(x));
  return (
    a.status !== b.status ||
    a.eligible !== b.eligible ||
    a.transferableQuantity !== b.transferableQuantity ||
    a.reasons.join("\n") !== b.reasons.join("\n") ||
    minute(a.remainingBudgetMinutes.high) !== minute(b.remainingBudgetMinutes.high) ||
    minute(a.remainingBudgetMinutes.low) !== minute(b.remainingBudgetMinutes.low)
  );
}

const args = process.argv.slice(2);
const verbose = args.includes("--verbose");
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const url = opt("--url") ?? process.env.COLDTRACE_MQTT_URL ?? "mqtt://127.0.0.1:1884";
const siteId = opt("--site");
const username = opt("--username") ?? process.env.COLDTRACE_MQTT_USERNAME;
const password = opt("--password") ?? process.env.COLDTRACE_MQTT_PASSWORD;
const planner = await startPlannerConsumer({
  url,
  ...(siteId ? { siteId } : {}),
  ...(username ? { username } : {}),
  ...(password ? { password } : {}),
  onChange: (c) => {
    if (!worthPrinting(c)) return;
    process.stdout.write(`${new Date().toISOString()} ${formatChange(c)}\n`);
  },
});
process.stdout.write(
  `planner: subscribed to eligibility and lot events on ${url}${siteId ? ` for ${siteId}` : ""}\n`,
);
const stop = async () => {
  await planner.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
