/**
 * Builds the agent into one ESM file for the boxes: edge-agent/build/coldtrace-agent.mjs.
 *
 * Why: running the .ts sources makes Node load its TypeScript stripper (a WebAssembly module,
 * ~17 MiB of RSS for the life of the process) and read hundreds of small files from the SD
 * card at every start. The bundle is plain JavaScript. Native modules (serialport's bindings)
 * stay external and load from node_modules as usual.
 *
 *   node edge-agent/deploy/build.ts        (npm run build -w @coldtrace/edge-agent)
 */
import { readFileSync } from "node:fs";
import { build } from "esbuild";

const root = new URL("../", import.meta.url);
const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { version: string };

await build({
  entryPoints: [new URL("src/cli/main.ts", root).pathname],
  outfile: new URL("build/coldtrace-agent.mjs", root).pathname,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  external: ["serialport", "@serialport/*"],
  define: { __AGENT_VERSION__: JSON.stringify(pkg.version) },
  // CommonJS dependencies (pino, mqtt …) call require() for Node built-ins.
  banner: {
    js: 'import { createRequire as __ctRequire } from "node:module"; const require = __ctRequire(import.meta.url);',
  },
  legalComments: "none",
  minify: true,
  keepNames: true,
  logLevel: "warning",
});
process.stdout.write("edge-agent/build/coldtrace-agent.mjs\n");
