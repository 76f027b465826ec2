/**
 * Run the reference planner consumer and print every change:
 *
 *   node simulators/src/planner/main.ts [--url mqtt://127.0.0.1:1884] [--site store-12]
 *       [--username planner --password <secret>]   (or COLDTRACE_MQTT_USERNAME / _PASSWORD)
 *
 * Also `coldtrace-sim planner …`.
 */
import { formatChange, startPlannerConsumer } from "./index.ts";

const args = process.argv.slice(2);
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
  onChange: (c) => process.stdout.write(`${new Date().toISOString()} ${formatChange(c)}\n`),
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
