// Loaded by Node-RED (package.json "node-red".nodes); the node is written in TypeScript, which
// Node 24 runs as is. Install this package by path (npm install /path/to/coldtrace/flows), not
// from a tarball: Node does not strip types under node_modules.
export { default } from "../src/node-red/notify-node.ts";
