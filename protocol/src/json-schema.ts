/** JSON Schema (draft 2020-12) of every payload, generated from the zod schemas. */
import { z } from "zod";
import { schemaFor } from "./codec.ts";
import type { TopicKind } from "./topics.ts";

export function jsonSchemas(): Record<TopicKind, unknown> {
  return Object.fromEntries(
    Object.entries(schemaFor).map(([kind, schema]) => [
      kind,
      z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }),
    ]),
  ) as Record<TopicKind, unknown>;
}

export function jsonSchemaFileText(schema: unknown): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
