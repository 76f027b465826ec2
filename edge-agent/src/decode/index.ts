/** Register decoding, block planning and stale detection for the acquisition layer. */
export * from "./blocks.ts";
export * from "./reading.ts";
export * from "./registers.ts";
export * from "./stale.ts";
