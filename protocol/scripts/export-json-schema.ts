/** Writes protocol/api/{kind}.schema.json. Run `npm run contract:api` after changing a schema. */
import { mkdirSync, writeFileSync } from "node:fs";
import { jsonSchemaFileText, jsonSchemas } from "../src/json-schema.ts";

const dir = new URL("../api/", import.meta.url);
mkdirSync(dir, { recursive: true });
for (const [kind, schema] of Object.entries(jsonSchemas())) {
  writeFileSync(new URL(`${kind}.schema.json`, dir), jsonSchemaFileText(schema));
  console.log(`protocol/api/${kind}.schema.json`);
}
