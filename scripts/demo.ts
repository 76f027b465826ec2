/**
 * `./run demo`: starts what exists of Coldtrace on this machine.
 *
 * Today that is an embedded MQTT broker (aedes, the gateway's default broker) on
 * 127.0.0.1:1884 and a contract monitor that validates and prints every message under
 * `ct/v1/#`, so you can publish to it by hand with mosquitto_pub and see the contract's
 * errors. The gateway, the edge agent and the simulated fleet are not built yet (see the
 * issues); this script says so rather than pretend.
 */
import { createServer } from "node:net";
import { decodeMessage, isColdtraceError } from "@coldtrace/protocol";
import { Aedes } from "aedes";
import mqtt from "mqtt";

const port = Number(process.env.COLDTRACE_DEMO_MQTT_PORT ?? 1884);
const aedes = await Aedes.createBroker();
const server = createServer(aedes.handle);
server.on("error", (err: NodeJS.ErrnoException) => {
  console.error(
    err.code === "EADDRINUSE"
      ? `demo: port ${port} is taken; set COLDTRACE_DEMO_MQTT_PORT to a free port`
      : `demo: broker failed: ${err.message}`,
  );
  process.exit(1);
});
await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
console.log(`demo: embedded MQTT broker on mqtt://127.0.0.1:${port}`);
console.log("demo: not built yet: gateway, edge agent, simulated fleet, console (see issues 4–6)");
console.log(`demo: try  mosquitto_pub -p ${port} -t ct/v1/store-1/agent/a1/state -m '{"v":1}'`);

const monitor = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: "ct-demo-monitor" });
await monitor.subscribeAsync("ct/v1/#", { qos: 1 });
monitor.on("message", (topic, payload) => {
  try {
    const message = decodeMessage(topic, payload);
    console.log(`ok   ${message.kind.padEnd(12)} ${topic}`);
  } catch (err) {
    console.log(`bad  ${isColdtraceError(err) ? err.message : String(err)}`);
  }
});

const stop = async () => {
  await monitor.endAsync();
  aedes.close();
  server.close();
  process.exit(0);
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
