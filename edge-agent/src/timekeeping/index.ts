/** Clock integrity: is the wall clock synchronised, did it jump, which readings to flag or re-anchor. */
export * from "./sync-source.ts";
export * from "./time-keeper.ts";
