import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { jsonSchemaFileText, jsonSchemas } from "../src/json-schema.ts";

describe("protocol/api JSON Schema exports", () => {
  it.each(Object.entries(jsonSchemas()))(
    "%s.schema.json is up to date (run npm run contract:api)",
    (kind, schema) => {
      const committed = readFileSync(new URL(`../api/${kind}.schema.json`, import.meta.url), "utf8");
      expect(committed).toBe(jsonSchemaFileText(schema));
    },
  );
});
