/**
 * What the lots use cases share: the clock, the log, the policy, the event writer, the readings
 * and the unit's limits — and `Changes`, the site/lot pairs a use case touched, whose retained
 * eligibility it publishes once at its end (not once per step).
 */
import type { Logger } from "pino";
import type { Clock } from "../kernel/clock.ts";
import type { UnitEntry } from "../kernel/units.ts";
import type { ReadingStore } from "../storage/types.ts";
import type { LotEvents } from "./events.ts";
import type { Limits, SummarizeExposure } from "./exposure.ts";
import type { QuarantinePolicy } from "./policy.ts";
import type { LotStore } from "./store.ts";

export interface LotsContext {
  readonly clock: Clock;
  readonly log: Logger;
  readonly policy: QuarantinePolicy;
  readonly events: LotEvents;
  readonly readings: Pick<ReadingStore, "range">;
  readonly summarize: SummarizeExposure;
  /** The unit's own range, used when a product has no labelled range on a side. */
  unitLimits(unitId: string): Limits | undefined;
  /** Which units exist (movements naming another unit are refused). */
  unit(unitId: string): UnitEntry | undefined;
}

/** Site/lot pairs whose eligibility may have changed. */
export class Changes {
  readonly #pairs = new Map<string, { siteId: string; lotId: string }>();

  add(siteId: string, lotId: string): void {
    this.#pairs.set(`${siteId}\u0000${lotId}`, { siteId, lotId });
  }

  addSites(sites: Iterable<string>, lotId: string): void {
    for (const s of sites) this.add(s, lotId);
  }

  /** Publish the retained eligibility of every pair whose content changed. */
  async publish(ctx: LotsContext, store: LotStore): Promise<void> {
    for (const p of this.#pairs.values()) await ctx.events.publishEligibility(store, p.siteId, p.lotId);
  }
}
