#!/usr/bin/env node
// coldtrace-sim: checks that this Node runs TypeScript, then starts the command (src/cli/main.ts).
import { requireTypeScriptNode } from "../../scripts/require-node.mjs";

requireTypeScriptNode("coldtrace-sim");
await import("../src/cli/main.ts");
