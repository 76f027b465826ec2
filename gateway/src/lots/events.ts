/**
 * What the lots module tells the planner: lot events (lot.quarantined, lot.released …, numbered
 * per lot and site by lotSeq) and the retained eligibility state of each lot at each site. Both
 * go into the transactional outbox on the executor of the change they announce, so they commit
 * with it. A lot's eligibility is published only when its content changed.
 *
 * At start the retained states are reconciled with the database, which is the truth: every
 * published state is enqueued again (a broker that lost its retained messages gets them back,
 * in order behind anything still unsent), and a retained state the broker holds for a lot
 * this database has no state for is cleared.
 */
import { createHash } from "node:crypto";
import { type Eligibility, formatTopic, type LotEvent } from "@coldtrace/protocol";
import type { Logger } from "pino";
import type { Clock } from "../kernel/clock.ts";
import type { Outbox } from "../outbox/index.ts";
import { composeEligibility, eligibilityContent } from "./eligibility.ts";
import type { LotStore, SiteLot } from "./store.ts";

/** A lot number as an eventId piece: readable slug plus a hash, since `/` and spaces are not allowed. */
export function lotKey(lotId: string): string {
  const slug = lotId.replace(/[^A-Za-z0-9._:-]+/g, "-").slice(0, 24);
  const hash = createHash("sha256").update(lotId).digest("hex").slice(0, 6);
  return `${slug}-${hash}`;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

export type NewLotEvent = Omit<LotEvent, "v" | "eventId" | "lotSeq" | "sku" | "at" | "excursionIds"> & {
  excursionIds?: readonly string[];
};

export class LotEvents {
  readonly #outbox: Outbox;
  readonly #clock: Clock;
  readonly #log: Logger;

  constructor(d: { outbox: Outbox; clock: Clock; log: Logger }) {
    this.#outbox = d.outbox;
    this.#clock = d.clock;
    this.#log = d.log;
  }

  /** The eligibility of a lot at a site, as the database says now. */
  async eligibilityOf(store: LotStore, siteId: string, lotId: string): Promise<Eligibility> {
    const lot = await store.lot(lotId);
    const product = lot ? await store.product(lot.sku) : undefined;
    const state = await store.siteState(siteId, lotId);
    return composeEligibility(
      siteId,
      lotId,
      {
        lot,
        product,
        stock: await store.stock(siteId, lotId),
        holds: await store.activeHolds({ siteId, lotId }),
        state,
        used: await store.budgetUsed(siteId, lotId),
      },
      this.#clock.now(),
    );
  }

  /** Every lot of a site (with stock or a state there), in set queries, ordered by lot. */
  async eligibilityAtSite(store: LotStore, siteId: string): Promise<Eligibility[]> {
    const stock = await store.stockAtSite(siteId);
    const states = await store.siteStates(siteId);
    const holds = await store.activeHoldsAtSite(siteId);
    const used = await store.budgetsAtSite(siteId);
    const lots = await store.lotsAtSite(siteId);
    const products = new Map((await store.products()).map((p) => [p.sku, p]));
    const now = this.#clock.now();
    const lotIds = [...new Set([...stock.keys(), ...states.keys()])].sort();
    return lotIds.map((lotId) => {
      const lot = lots.get(lotId);
      return composeEligibility(
        siteId,
        lotId,
        {
          lot,
          product: lot ? products.get(lot.sku) : undefined,
          stock: stock.get(lotId) ?? 0,
          holds: holds.get(lotId) ?? [],
          state: states.get(lotId),
          used: used.get(lotId),
        },
        now,
      );
    });
  }

  /**
   * Enqueue the lot's retained eligibility at the site, unless it is what was published last
   * (updatedAt aside): an excursion updates the lots inside every minute, and the planner needs
   * a message only when something it acts on changed.
   */
  async publishEligibility(store: LotStore, siteId: string, lotId: string): Promise<Eligibility> {
    const current = await this.eligibilityOf(store, siteId, lotId);
    const content = eligibilityContent(current);
    const last = await store.siteState(siteId, lotId);
    if (last?.published === content) return current;
    const version = await store.markPublished(siteId, lotId, content, this.#clock.now());
    // The row's defaults (available, lotSeq 0) are what `current` assumed for a lot without one.
    const eventId = `elig-${siteId}-${lotKey(lotId)}-${current.lotSeq}-${version}`;
    await this.#outbox.enqueue(
      store.executor,
      "eligibility",
      formatTopic({ kind: "eligibility", siteId, lotId }),
      current,
      eventId,
    );
    return current;
  }

  /** Enqueue a lot event with the lot's next lotSeq at the site. */
  async emit(store: LotStore, ev: NewLotEvent): Promise<LotEvent> {
    const lot = await store.lot(ev.lotId);
    const now = this.#clock.now();
    const lotSeq = await store.nextLotSeq(ev.siteId, ev.lotId, now);
    const payload: LotEvent = {
      v: 1,
      eventId: `lot-${ev.siteId}-${lotKey(ev.lotId)}-${lotSeq}`,
      at: now,
      sku: lot?.sku ?? "unknown",
      lotSeq,
      ...ev,
      excursionIds: [...new Set(ev.excursionIds ?? [])].filter((id) => ID.test(id)),
      reason: ev.reason.slice(0, 500),
    };
    await this.#outbox.enqueue(
      store.executor,
      "lot",
      formatTopic({ kind: "lot", siteId: ev.siteId, lotId: ev.lotId }),
      payload,
      payload.eventId,
    );
    this.#log.info(
      { siteId: ev.siteId, lotId: ev.lotId, type: ev.type, lotSeq, quantity: ev.quantity },
      "lot event",
    );
    return payload;
  }

  /**
   * Enqueue again the current retained state of published site/lot pairs, after `after`, at most
   * `limit` (the resync at start, in pages). The eventIds are new (`resync` and the start time),
   * so the outbox keeps them beside the original rows. Returns the last pair enqueued.
   */
  async resyncPage(
    store: LotStore,
    startedAt: number,
    after: SiteLot | undefined,
    limit: number,
  ): Promise<{ count: number; last: SiteLot | undefined }> {
    const pairs = await store.publishedSiteLots({ ...(after ? { after } : {}), limit });
    for (const p of pairs) {
      const current = await this.eligibilityOf(store, p.siteId, p.lotId);
      const content = eligibilityContent(current);
      const version = await store.markPublished(p.siteId, p.lotId, content, this.#clock.now());
      await this.#outbox.enqueue(
        store.executor,
        "eligibility",
        formatTopic({ kind: "eligibility", siteId: p.siteId, lotId: p.lotId }),
        current,
        `elig-${p.siteId}-${lotKey(p.lotId)}-${current.lotSeq}-${version}-resync-${startedAt}`,
      );
    }
    return { count: pairs.length, last: pairs.at(-1) };
  }
}
