#!/usr/bin/env node
// coldtrace-gateway: checks that this Node runs TypeScript, then starts the command (src/cli/main.ts).
import { requireTypeScriptNode } from "../../scripts/require-node.mjs";

requireTypeScriptNode("coldtrace-gateway");
await import("../src/cli/main.ts");
