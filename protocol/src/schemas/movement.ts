/**
 * Stock movements from the ERP or the store: they tell the gateway which lots are in which
 * unit at every moment. Each carries an idempotency id; the gateway places movements by
 * their event time (`occurredAt`), not by arrival.
 */
import { z } from "zod";
import { epochMs, lotId, segmentId, version } from "./common.ts";

export const movementKind = z.enum(["receive", "move", "load", "unload", "dispense", "return", "destroy"]);
export type MovementKind = z.infer<typeof movementKind>;

/** Which unit fields each kind needs: from = where stock leaves, to = where it enters. */
export const movementEnds: Record<MovementKind, { from: boolean; to: boolean }> = {
  receive: { from: false, to: true },
  move: { from: true, to: true },
  load: { from: true, to: true },
  unload: { from: true, to: true },
  dispense: { from: true, to: false },
  return: { from: false, to: true },
  destroy: { from: true, to: false },
};

export const movement = z
  .object({
    v: version,
    /** Idempotency key: the same id twice is one movement. */
    movementId: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9._:-]+$/, "must be 1–128 of A–Z a–z 0–9 . _ : -"),
    kind: movementKind,
    siteId: segmentId,
    occurredAt: epochMs,
    lotId,
    sku: z.string().min(1).max(64),
    quantity: z.number().int("must be a whole number of units").min(1, "must be at least 1"),
    fromUnitId: segmentId.optional(),
    toUnitId: segmentId.optional(),
    /** ERP document, delivery note or transfer order the movement belongs to. */
    reference: z.string().max(128).optional(),
    actor: z.string().max(128).optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    const ends = movementEnds[m.kind];
    for (const side of ["from", "to"] as const) {
      const key = side === "from" ? "fromUnitId" : "toUnitId";
      if (ends[side] && m[key] === undefined) {
        ctx.addIssue({ code: "custom", path: [key], message: `is required for a ${m.kind} movement` });
      }
      if (!ends[side] && m[key] !== undefined) {
        ctx.addIssue({ code: "custom", path: [key], message: `must be absent for a ${m.kind} movement` });
      }
    }
    if (m.fromUnitId !== undefined && m.fromUnitId === m.toUnitId) {
      ctx.addIssue({ code: "custom", path: ["toUnitId"], message: "must differ from fromUnitId" });
    }
  });
export type Movement = z.output<typeof movement>;
