/**
 * A real Node-RED 5 runtime in its own process, embedded the documented way (RED.init with an
 * HTTP server, RED.start), loading the Coldtrace nodes from this package (`nodesDir`) and the
 * flow file from its user directory. The parent (./node-red.ts) talks to it over IPC:
 *
 *   parent ──{clock: t}──▶ child     sets the clock every Coldtrace node reads (coldtraceEscalationClock)
 *   parent ──{stop}──────▶ child     RED.stop(), then exit 0 (an orderly restart)
 *   child  ──{ready, adminUrl, url}─▶ parent
 *
 * The admin API and the HTTP nodes listen on two ports of 127.0.0.1 chosen by the OS.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import RED from "node-red";

interface ChildOptions {
  userDir: string;
  /** Start value of the test clock; absent: the system clock. */
  clockStart?: number;
}

const opts = JSON.parse(process.env.CT_NODE_RED_CHILD ?? "{}") as ChildOptions;
const flowsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
let now = opts.clockStart ?? 0;
const clock = opts.clockStart === undefined ? undefined : { now: () => now };

const admin = http.createServer();
const nodes = http.createServer();
const red = RED as unknown as {
  init(server: http.Server, settings: object): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  httpAdmin: http.RequestListener;
  httpNode: http.RequestListener;
};
red.init(admin, {
  userDir: opts.userDir,
  flowFile: "flows.json",
  credentialSecret: false,
  nodesDir: [flowsDir],
  httpAdminRoot: "/",
  httpNodeRoot: "/",
  logging: { console: { level: "warn", metrics: false, audit: false } },
  telemetry: { enabled: false, updateNotification: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
  editorTheme: { tours: false },
  ...(clock ? { coldtraceEscalationClock: clock } : {}),
});
admin.on("request", red.httpAdmin);
nodes.on("request", red.httpNode);
const listen = (s: http.Server) =>
  new Promise<number>((resolve) =>
    s.listen(0, "127.0.0.1", () => resolve((s.address() as AddressInfo).port)),
  );
const [adminPort, nodePort] = await Promise.all([listen(admin), listen(nodes)]);
await red.start();

process.on("message", (m: { clock?: number; stop?: boolean }) => {
  if (typeof m.clock === "number") {
    now = m.clock;
    process.send?.({ clockSet: now });
  }
  if (m.stop) {
    void red
      .stop()
      .then(() => {
        admin.close();
        nodes.close();
        process.exit(0);
      })
      .catch((err: unknown) => {
        console.error(err);
        process.exit(1);
      });
  }
});
process.send?.({
  ready: true,
  adminUrl: `http://127.0.0.1:${adminPort}`,
  url: `http://127.0.0.1:${nodePort}`,
});
