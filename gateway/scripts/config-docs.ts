/**
 * Regenerate the settings tables of docs/integrator/gateway-config.md from the configuration
 * schema (gateway/src/config/docs.ts). `npm run docs:config`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { withSettingsTables } from "../src/config/docs.ts";

const file = new URL("../../docs/integrator/gateway-config.md", import.meta.url);
const before = readFileSync(file, "utf8");
const after = withSettingsTables(before);
if (after !== before) writeFileSync(file, after);
console.log(
  after === before ? "gateway-config.md: tables up to date" : "gateway-config.md: tables regenerated",
);
