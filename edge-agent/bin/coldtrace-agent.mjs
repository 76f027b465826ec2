#!/usr/bin/env node
// coldtrace-agent: checks that this Node runs TypeScript, then runs the command (src/cli/main.ts,
// whose own entry point runs only when it is the main module).
import { requireTypeScriptNode } from "../../scripts/require-node.mjs";

requireTypeScriptNode("coldtrace-agent");
const { main } = await import("../src/cli/main.ts");
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`coldtrace-agent: ${err.message}\n`);
    process.exit(1);
  },
);
