/**
 * The unit directory: which units exist, at which site, of what kind, with which probes, and
 * their resolved excursion profile. The one answer every module reads (the excursion engine
 * adapter, lots' range limits, and next QA and the console), kept by the gateway host from
 * agent births and, at start, from the units already in the records.
 *
 *   ingest (births, records at start) ─▶ UnitRegistry.register ─▶ UnitDirectory (read-only
 *                                                                   view for extensions)
 *   profile(unitId) ─▶ the profile resolver (the excursions module: kind defaults ←
 *                      profiles.byKind ← profiles.byUnit)
 *
 * No I/O: the records database stays the durable truth; this is its in-memory index.
 */
import type { UnitKind } from "@coldtrace/protocol";
import type { UnitProfile } from "./profiles.ts";

export interface UnitEntry {
  readonly unitId: string;
  readonly siteId: string;
  readonly kind: UnitKind;
  readonly probeIds: readonly string[];
}

/** Read access to the units the gateway knows. */
export interface UnitDirectory {
  get(unitId: string): UnitEntry | undefined;
  /** Every known unit (of one site), ordered by unitId. */
  list(siteId?: string): UnitEntry[];
  /**
   * The unit's resolved profile; undefined for an unknown unit, or when no module resolves
   * profiles. Throws (a ZodError naming the field) when the unit's configured profile is
   * invalid: the excursion engine refused the same profile when the unit registered.
   */
  profile(unitId: string): UnitProfile | undefined;
}

/** Resolves a unit's profile from its id and kind (the excursions module provides it). */
export type ProfileResolver = (unitId: string, kind: UnitKind) => UnitProfile | undefined;

/** The writable directory the host keeps; extensions see it as a `UnitDirectory`. */
export class UnitRegistry implements UnitDirectory {
  readonly #units = new Map<string, UnitEntry>();
  readonly #resolve: ProfileResolver;

  constructor(resolve: ProfileResolver = () => undefined) {
    this.#resolve = resolve;
  }

  /** Add a unit, or replace what is known of it (a later birth may move probes or the kind). */
  register(unit: UnitEntry): void {
    this.#units.set(unit.unitId, {
      unitId: unit.unitId,
      siteId: unit.siteId,
      kind: unit.kind,
      probeIds: [...unit.probeIds],
    });
  }

  get(unitId: string): UnitEntry | undefined {
    return this.#units.get(unitId);
  }

  list(siteId?: string): UnitEntry[] {
    const all = [...this.#units.values()].filter((u) => siteId === undefined || u.siteId === siteId);
    return all.sort((a, b) => (a.unitId < b.unitId ? -1 : a.unitId > b.unitId ? 1 : 0));
  }

  profile(unitId: string): UnitProfile | undefined {
    const unit = this.#units.get(unitId);
    return unit ? this.#resolve(unit.unitId, unit.kind) : undefined;
  }
}
