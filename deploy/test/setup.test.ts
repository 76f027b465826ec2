/**
 * The compose stack's first start, for real: deploy/setup.ts makes the accounts, secrets and
 * ACL; deploy/mosquitto/start.sh hashes the new passwords and runs a real Mosquitto with the
 * stack's mosquitto.conf (on a free port, in a temp folder). Then the accounts log in and the
 * ACL confines them; a second start keeps every secret and adds only what is new.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { canConnect, freePort } from "@coldtrace/testkit";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GATEWAY_USERNAME, setupAccounts, stackAccounts } from "../setup.ts";

const deploy = path.resolve(import.meta.dirname, "..");
const hasMosquitto = (() => {
  try {
    execFileSync(
      "sh",
      ["-c", "command -v mosquitto_passwd && (command -v mosquitto || test -x /usr/sbin/mosquitto)"],
      {
        stdio: "ignore",
      },
    );
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasMosquitto)("first start of the compose stack: setup, then Mosquitto", () => {
  let dir: string;
  let secrets: string;
  let broker: string;
  let conf: string;
  let port: number;
  let child: ChildProcess | undefined;
  const clients: MqttClient[] = [];
  const credentialsFile = () => path.join(dir, "data", "credentials.json");

  const secret = (name: string) => readFileSync(path.join(secrets, name), "utf8").trim();
  const login = async (username: string, password = secret(username)) => {
    const c = await connectAsync(`mqtt://127.0.0.1:${port}`, {
      username,
      password,
      clientId: `${username}-${clients.length}`,
      reconnectPeriod: 0,
    });
    clients.push(c);
    return c;
  };
  const setup = (demo: boolean) =>
    setupAccounts({
      credentialsFile: credentialsFile(),
      secretsDir: secrets,
      brokerDir: broker,
      accounts: stackAccounts({ erpSites: ["store-12"], demo }),
      log: () => {},
    });

  /** deploy/mosquitto/start.sh as the container runs it; resolves once Mosquitto listens. */
  async function startBroker(): Promise<void> {
    const out: string[] = [];
    child = spawn("sh", [path.join(deploy, "mosquitto/start.sh")], {
      env: { ...process.env, MOSQUITTO_ACCOUNTS: broker, MOSQUITTO_CONF: conf },
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const s of [child.stdout, child.stderr]) s?.on("data", (b: Buffer) => out.push(b.toString()));
    const c = child;
    while (!(await canConnect("127.0.0.1", port, 200))) {
      if (c.exitCode !== null) throw new Error(`start.sh exited ${c.exitCode}: ${out.join("")}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  async function stopBroker(): Promise<void> {
    for (const c of clients.splice(0)) c.end(true);
    const c = child;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once("exit", r));
    c.kill("SIGTERM");
    await gone;
  }

  /** Topics `reader` receives on `filter` while `publish` runs (Mosquitto applies read ACLs at delivery). */
  const delivered = async (reader: MqttClient, filter: string, publish: () => Promise<void>) => {
    const sentinel = `ct/v1/_gateway/test-${clients.length}/state`;
    const seen: string[] = [];
    reader.on("message", (t) => seen.push(t));
    await reader.subscribeAsync([filter, sentinel], { qos: 1 });
    await publish();
    const gw = await login(GATEWAY_USERNAME);
    await gw.publishAsync(sentinel, "end", { qos: 1 });
    while (!seen.includes(sentinel)) await new Promise((r) => setTimeout(r, 10));
    return seen.filter((t) => t !== sentinel);
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ct-stack-"));
    await chmod(dir, 0o755); // Mosquitto may drop to its own user and must reach the files
    secrets = path.join(dir, "secrets");
    broker = path.join(dir, "broker");
    port = await freePort();
    // The stack's configuration, moved into the temp folder and onto a free loopback port.
    const stack = readFileSync(path.join(deploy, "mosquitto/mosquitto.conf"), "utf8");
    expect(stack).toMatch(/^listener 1883$/m);
    conf = path.join(dir, "mosquitto.conf");
    await mkdir(path.join(dir, "data"), { recursive: true });
    await writeFile(
      conf,
      stack
        .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
        .replaceAll("/mosquitto/accounts", broker)
        .replace(/^persistence true$/m, "persistence false")
        .replace(/^persistence_location .*$/m, ""),
    );
  });
  afterAll(async () => {
    await stopBroker();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("setup makes every account once, secrets private, hashes only in the account list", async () => {
    const made = await setup(false);
    expect(made).toEqual([GATEWAY_USERNAME, "planner", "nodered", "erp-bridge"]);
    for (const name of made) {
      expect(statSync(path.join(secrets, name)).mode & 0o777, name).toBe(0o600);
      expect(secret(name).length).toBeGreaterThanOrEqual(32);
    }
    expect(statSync(path.join(broker, "passwd.new")).mode & 0o777).toBe(0o600);
    const list = readFileSync(credentialsFile(), "utf8");
    for (const name of made.slice(1)) {
      expect(list).toContain(`"username": "${name}"`);
      expect(list).not.toContain(secret(name));
    }
    expect(readFileSync(path.join(broker, "acl"), "utf8")).toContain(
      "user erp-bridge\ntopic write ct/v1/store-12/movements",
    );
  });

  it("Mosquitto starts with the hashed password file; no plain secret is left", async () => {
    await startBroker();
    expect(existsSync(path.join(broker, "passwd.new"))).toBe(false);
    const passwd = readFileSync(path.join(broker, "passwd"), "utf8");
    expect(passwd).toMatch(/^coldtrace-gateway:\$7\$/m);
    expect(passwd).not.toContain(secret("planner"));
    expect(statSync(path.join(broker, "passwd")).mode & 0o777).toBe(0o600);
  });

  it("refuses a wrong password and an unknown account", async () => {
    await expect(login("planner", "not-the-secret")).rejects.toThrow(/Not authorized|Bad username/i);
    await expect(login("intruder", "x")).rejects.toThrow(/Not authorized|Bad username/i);
  });

  it("the ACL confines each account: the planner reads eligibility, the ERP bridge writes its sites' movements", async () => {
    const planner = await login("planner");
    const gw = await login(GATEWAY_USERNAME);
    const seenByPlanner = await delivered(planner, "ct/v1/+/#", async () => {
      await gw.publishAsync("ct/v1/store-12/eligibility/L2026%2F0412", "{}", { qos: 1 });
      await gw.publishAsync("ct/v1/store-12/events/alarm/fridge-2", "{}", { qos: 1 });
    });
    expect(seenByPlanner).toEqual(["ct/v1/store-12/eligibility/L2026%2F0412"]);

    const reader = await login(GATEWAY_USERNAME);
    const erp = await login("erp-bridge");
    const seenByGateway = await delivered(reader, "ct/v1/+/movements", async () => {
      await erp.publishAsync("ct/v1/store-12/movements", "{}", { qos: 1 });
      await erp.publishAsync("ct/v1/store-13/movements", "{}", { qos: 1 }); // not its site: dropped
    });
    expect(seenByGateway).toEqual(["ct/v1/store-12/movements"]);
  });

  it("a second start keeps every secret and adds only new accounts (the demo's agents)", async () => {
    await stopBroker();
    const before = secret("planner");
    expect(await setup(false)).toEqual([]);
    expect(existsSync(path.join(broker, "passwd.new"))).toBe(false);
    const made = await setup(true);
    expect(made).toEqual(["demo-pi-1", "fleet-1-pi", "fleet-2-pi"]);
    expect(readFileSync(path.join(broker, "passwd.new"), "utf8").trim().split("\n")).toHaveLength(3);
    await startBroker();
    expect(secret("planner")).toBe(before);
    await login("planner");
    await login("demo-pi-1");
    // The fleet simulator logs all its agents in with one shared secret.
    await login("fleet-1-pi", secret("fleet"));
    await login("fleet-2-pi", secret("fleet"));
    expect(readFileSync(path.join(broker, "acl"), "utf8")).toContain(
      "user fleet-2-pi\ntopic readwrite ct/v1/fleet-2/agent/fleet-2-pi/#",
    );
  });
});
