/** The local alarm relay (see local-alarm.ts). */
export * from "./local-alarm.ts";
