/**
 * The latest reading of every probe, in memory, so the fleet overview of 500 units is one
 * pass over a map instead of 500 `ReadingStore.latest` queries. Filled from the reading store
 * the first time a unit is asked for, then kept current by the readings ingest stores.
 *
 *   ingest: readings stored ─▶ apply() (keeps the newest by observedAt per probe)
 *   overview / unit page  ─▶ ensure(unitIds) ─▶ ReadingStore.latest(unit) once per unit
 *
 * A reading that arrives while a unit is being loaded is kept: the newer of the two wins.
 */
import type { ReadingStore, StoredReading } from "../storage/types.ts";

export class LatestReadings {
  readonly #store: Pick<ReadingStore, "latest">;
  readonly #byUnit = new Map<string, Map<string, StoredReading>>();
  readonly #loaded = new Set<string>();
  readonly #loading = new Map<string, Promise<void>>();

  constructor(store: Pick<ReadingStore, "latest">) {
    this.#store = store;
  }

  apply(readings: readonly StoredReading[]): void {
    for (const r of readings) this.#keep(r);
  }

  #keep(r: StoredReading): void {
    let probes = this.#byUnit.get(r.unitId);
    if (!probes) {
      probes = new Map();
      this.#byUnit.set(r.unitId, probes);
    }
    const known = probes.get(r.probeId);
    if (!known || r.observedAt >= known.observedAt) probes.set(r.probeId, r);
  }

  /** Load the units not loaded yet from the store (a few at a time). */
  async ensure(unitIds: readonly string[]): Promise<void> {
    const todo = unitIds.filter((u) => !this.#loaded.has(u));
    const CONCURRENCY = 8;
    for (let i = 0; i < todo.length; i += CONCURRENCY) {
      await Promise.all(todo.slice(i, i + CONCURRENCY).map((u) => this.#load(u)));
    }
  }

  #load(unitId: string): Promise<void> {
    let p = this.#loading.get(unitId);
    if (!p) {
      p = (async () => {
        try {
          for (const r of await this.#store.latest(unitId)) this.#keep(r);
          this.#loaded.add(unitId);
        } finally {
          this.#loading.delete(unitId);
        }
      })();
      this.#loading.set(unitId, p);
    }
    return p;
  }

  of(unitId: string): ReadonlyMap<string, StoredReading> {
    return this.#byUnit.get(unitId) ?? new Map();
  }
}
