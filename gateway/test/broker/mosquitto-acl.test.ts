/**
 * The Mosquitto ACL and password file shipped in docs/integrator/mosquitto/ enforce the same
 * rules as the embedded broker: a private `mosquitto` on a free port with those two files.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { canConnect, freePort } from "@coldtrace/testkit";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const examples = path.resolve(import.meta.dirname, "../../../docs/integrator/mosquitto");
const hasMosquitto = (() => {
  try {
    execFileSync("sh", ["-c", "command -v mosquitto || test -x /usr/sbin/mosquitto"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasMosquitto)("Mosquitto with the example ACL and password file", () => {
  let dir: string;
  let child: ChildProcess;
  let url: string;
  const clients: MqttClient[] = [];
  const login = async (user: string, password = `example-${user}-change-me`) => {
    const c = await connectAsync(url, {
      username: user,
      password,
      clientId: `${user}-${clients.length}`,
      reconnectPeriod: 0,
    });
    clients.push(c);
    return c;
  };
  /**
   * Topics `reader` receives on `filter` while `publish` runs. Mosquitto 2.0 grants every
   * SUBACK and applies read ACLs at delivery, so the test looks at what is delivered; the
   * reader's own sentinel (published last, delivered in order) marks the end.
   */
  const delivered = async (
    reader: MqttClient,
    filter: string,
    sentinel: string,
    publish: () => Promise<void>,
  ) => {
    const seen: string[] = [];
    reader.on("message", (t) => seen.push(t));
    await reader.subscribeAsync([filter, sentinel], { qos: 1 });
    await publish();
    await reader.publishAsync(sentinel, "end", { qos: 1 });
    while (!seen.includes(sentinel)) await new Promise((r) => setTimeout(r, 10));
    return seen.filter((t) => t !== sentinel);
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-mosq-"));
    const port = await freePort();
    url = `mqtt://127.0.0.1:${port}`;
    const conf = path.join(dir, "mosquitto.conf");
    await writeFile(
      conf,
      `listener ${port} 127.0.0.1\nallow_anonymous false\npersistence false\n` +
        `password_file ${examples}/passwd\nacl_file ${examples}/acl\n`,
    );
    const bin = execFileSync("sh", ["-c", "command -v mosquitto || echo /usr/sbin/mosquitto"])
      .toString()
      .trim();
    child = spawn(bin, ["-c", conf], { stdio: "ignore" });
    while (!(await canConnect("127.0.0.1", port, 200))) await new Promise((r) => setTimeout(r, 20));
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    child?.kill("SIGTERM");
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a bad password", async () => {
    await expect(login("pi-fridge-3", "wrong")).rejects.toMatchObject({ code: 5 });
  });

  it("lets an agent write only its own subtree, and read no one else's", async () => {
    const gw = await login("coldtrace-gateway");
    const seen: string[] = [];
    gw.on("message", (t) => seen.push(t));
    await gw.subscribeAsync("ct/v1/#", { qos: 1 });
    const agent = await login("pi-fridge-3");
    await agent.publishAsync("ct/v1/store-12/agent/pi-box-7/birth", "x", { qos: 1 }); // another agent
    await agent.publishAsync("ct/v1/store-12/events/alarm/fridge-2", "x", { qos: 1 }); // gateway events
    await agent.publishAsync("ct/v1/store-99/agent/pi-fridge-3/health", "x", { qos: 1 }); // another site
    await agent.publishAsync("ct/v1/store-12/agent/pi-fridge-3/health", "ok", { qos: 1 });
    while (!seen.includes("ct/v1/store-12/agent/pi-fridge-3/health"))
      await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual(["ct/v1/store-12/agent/pi-fridge-3/health"]);

    const box = await login("pi-box-7");
    const read = await delivered(
      agent,
      "ct/v1/+/agent/#",
      "ct/v1/store-12/agent/pi-fridge-3/state",
      async () => {
        await box.publishAsync("ct/v1/store-12/agent/pi-box-7/telemetry/box-7", "r", { qos: 1 });
      },
    );
    expect(read).toEqual([]);
  });

  it("lets the planner read eligibility and lot events, not alarms", async () => {
    const gw = await login("coldtrace-gateway");
    const planner = await login("planner");
    const seen: string[] = [];
    planner.on("message", (t) => seen.push(t));
    await planner.subscribeAsync(["ct/v1/+/events/#", "ct/v1/+/eligibility/+"], { qos: 1 });
    await gw.publishAsync("ct/v1/store-12/events/alarm/fridge-2", "a", { qos: 1 });
    await gw.publishAsync("ct/v1/store-12/events/lot/L1", "l", { qos: 1 });
    await gw.publishAsync("ct/v1/store-12/eligibility/L1", "e", { qos: 1 });
    while (!seen.includes("ct/v1/store-12/eligibility/L1")) await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual(["ct/v1/store-12/events/lot/L1", "ct/v1/store-12/eligibility/L1"]);
  });
});
