/**
 * What the console's pages read, each in one call: the fleet overview (sites → units with
 * state, latest temperature per probe, agent, faults, calibration, alarms), one unit with the
 * profile in force, the alarm and excursion inbox, and a lot (eligibility, holds, exposures,
 * stays). Reads only: acknowledging goes through the existing alarms API and the engine.
 *
 * It also keeps the overview's tiles current for the live stream: `refreshTiles()` re-derives
 * every unit's tile and publishes the ones whose state changed (`unit` events). It runs when
 * an event may have changed a tile (debounced) and every `refreshMs` while a browser listens,
 * since time alone turns a silent unit to "gap".
 */
import type { UnitKind } from "@coldtrace/protocol";
import type { Logger } from "pino";
import type { UnitProfile } from "../kernel/profiles.ts";
import type { LotService } from "../lots/index.ts";
import type {
  AlarmRecord,
  ExcursionRecord,
  ReadingStore,
  RecordStore,
  UnitRecord,
} from "../storage/types.ts";
import { type ConsoleConfig, consoleSite, hostTimeZone } from "./config.ts";
import { tileSignature, type UnitFacts, unitOverviewOf, worstFirst } from "./fleet.ts";
import { LatestReadings } from "./latest.ts";
import type { LiveHub } from "./live.ts";
import type {
  FleetView,
  InboxView,
  LotView,
  ProfileView,
  SiteView,
  UnitDetailView,
  UnitOverview,
} from "./views.ts";

const DAY = 86_400_000;
const OPEN_END = Number.MAX_SAFE_INTEGER;

/** What the console reads of the lots module. */
export type LotsReader = Pick<
  LotService,
  "getLot" | "eligibility" | "holds" | "exposures" | "occupancy" | "occupancyIntervals"
>;

/** The profile in force for a unit and where it comes from (configuration or built-in). */
export interface ProfileInForce {
  profile: Pick<
    UnitProfile,
    "range" | "alert" | "action" | "delayMs" | "hysteresisC" | "maxGapMs" | "cadence"
  >;
  source: ProfileView["source"];
}

export interface ConsoleServiceDeps {
  config: ConsoleConfig;
  records: RecordStore;
  readings: Pick<ReadingStore, "latest">;
  /** The lots module's service, when it runs. */
  lots?: () => LotsReader | undefined;
  /** Undefined when the unit's configured profile is invalid (the engine refused it too). */
  profileOf(unitId: string, kind: UnitKind): ProfileInForce | undefined;
  hub: LiveHub;
  now: () => number;
  log: Logger;
}

/** A unit's profile gap bound when its profile is invalid: treat a silent hour as a gap. */
const FALLBACK_MAX_GAP_MS = 3_600_000;

const limits = (l: { low?: number | undefined; high?: number | undefined }) => ({
  low: l.low ?? null,
  high: l.high ?? null,
});

export class ConsoleService {
  readonly latest: LatestReadings;
  readonly #d: ConsoleServiceDeps;
  readonly #log: Logger;
  #signatures: Map<string, string> | undefined;
  /** Units whose tile was not "ok" at the last refresh: their readings may bring them back. */
  readonly #notOk = new Set<string>();
  readonly #profiles = new Map<string, ProfileInForce>();
  #refreshing: Promise<void> | undefined;
  #again = false;
  #debounce: NodeJS.Timeout | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: ConsoleServiceDeps) {
    this.#d = deps;
    this.#log = deps.log;
    this.latest = new LatestReadings(deps.readings);
  }

  site(siteId: string): SiteView {
    return consoleSite(this.#d.config, siteId);
  }

  async sites(units?: readonly UnitRecord[]): Promise<SiteView[]> {
    const ids = new Set(Object.keys(this.#d.config.sites));
    for (const u of units ?? (await this.#d.records.listUnits())) ids.add(u.siteId);
    return [...ids].sort().map((id) => this.site(id));
  }

  settings(signedInAs: string) {
    return (async () => ({
      defaultLanguage: this.#d.config.defaultLanguage,
      defaultTimeZone: this.#d.config.defaultTimeZone ?? hostTimeZone(),
      heartbeatMs: this.#d.config.heartbeatMs,
      sites: await this.sites(),
      signedInAs,
    }))();
  }

  /** The configuration is frozen, so a unit's profile is worked out once per kind it reports. */
  #profile(unit: UnitRecord): ProfileInForce | undefined {
    const key = `${unit.unitId}\u0000${unit.kind}`;
    const known = this.#profiles.get(key);
    if (known) return known;
    // Not kept while unknown: the unit may not be in the directory yet (its birth is on the way).
    const found = this.#d.profileOf(unit.unitId, unit.kind);
    if (found) this.#profiles.set(key, found);
    return found;
  }

  /** Every unit's tile (of one site, or all), worst first. */
  async fleet(siteId?: string): Promise<FleetView> {
    const now = this.#d.now();
    const r = this.#d.records;
    const [units, probes, agents, raised, acknowledged, openExcursions] = await Promise.all([
      r.listUnits(siteId),
      r.listProbes(),
      r.listAgents(siteId),
      r.listAlarms({ state: "raised", ...(siteId ? { siteId } : {}) }),
      r.listAlarms({ state: "acknowledged", ...(siteId ? { siteId } : {}) }),
      r.listExcursions({ open: true, ...(siteId ? { siteId } : {}) }),
    ]);
    await this.latest.ensure(units.map((u) => u.unitId));
    const probesOf = Map.groupBy(probes, (p) => p.unitId);
    const alarmsOf = Map.groupBy([...raised, ...acknowledged], (a) => a.unitId);
    const excursionsOf = Map.groupBy(openExcursions, (e) => e.unitId);
    const agentById = new Map(agents.map((a) => [a.agentId, a]));
    const tiles = units.map((unit) => {
      const unitProbes = probesOf.get(unit.unitId) ?? [];
      const agentId = unitProbes.find((p) => p.agentId !== undefined)?.agentId;
      return this.#tile(
        unit,
        {
          probes: unitProbes,
          agent: agentId === undefined ? undefined : agentById.get(agentId),
          openAlarms: alarmsOf.get(unit.unitId) ?? [],
          openExcursions: excursionsOf.get(unit.unitId) ?? [],
        },
        now,
      );
    });
    tiles.sort(worstFirst);
    return { generatedAt: now, sites: await this.sites(siteId ? units : undefined), units: tiles };
  }

  #tile(
    unit: UnitRecord,
    f: Pick<UnitFacts, "probes" | "agent" | "openAlarms" | "openExcursions">,
    now: number,
  ): UnitOverview {
    const profile = this.#profile(unit)?.profile;
    return unitOverviewOf({
      unit,
      ...f,
      latest: this.latest.of(unit.unitId),
      range: profile?.range ?? {},
      maxGapMs: profile?.maxGapMs ?? FALLBACK_MAX_GAP_MS,
      now,
      calibrationDueSoonMs: this.#d.config.calibrationDueSoonDays * DAY,
    });
  }

  async unit(unitId: string): Promise<UnitDetailView | undefined> {
    const now = this.#d.now();
    const r = this.#d.records;
    const unit = await r.getUnit(unitId);
    if (!unit) return undefined;
    const [probes, agents, raised, acknowledged, openExcursions] = await Promise.all([
      r.listProbes(unitId),
      r.listAgents(unit.siteId),
      r.listAlarms({ unitId, state: "raised" }),
      r.listAlarms({ unitId, state: "acknowledged" }),
      r.listExcursions({ unitId, open: true }),
    ]);
    await this.latest.ensure([unitId]);
    const agentId = probes.find((p) => p.agentId !== undefined)?.agentId;
    const tile = this.#tile(
      unit,
      {
        probes,
        agent: agents.find((a) => a.agentId === agentId),
        openAlarms: [...raised, ...acknowledged],
        openExcursions,
      },
      now,
    );
    const inForce = this.#profile(unit);
    const lots = this.#d.lots?.();
    return {
      generatedAt: now,
      site: this.site(unit.siteId),
      unit: tile,
      profile: inForce
        ? {
            source: inForce.source,
            range: limits(inForce.profile.range),
            alert: limits(inForce.profile.alert),
            action: limits(inForce.profile.action),
            delayMs: inForce.profile.delayMs,
            hysteresisC: inForce.profile.hysteresisC,
            maxGapMs: inForce.profile.maxGapMs,
            recordMs: inForce.profile.cadence.recordMs,
          }
        : null,
      probes: probes.map((p) => ({
        probeId: p.probeId,
        driver: p.driver ?? null,
        intervalMs: p.intervalMs ?? null,
        calibrationOffsetC: p.calibrationOffsetC ?? null,
      })),
      lots: lots ? await lots.occupancy(unitId, now) : [],
    };
  }

  /** Open alarms and excursions, and those that ended within `hours`; newest first. */
  async inbox(q: { siteId?: string; hours: number }): Promise<InboxView> {
    const now = this.#d.now();
    const from = now - q.hours * 3_600_000;
    const site = q.siteId ? { siteId: q.siteId } : {};
    const r = this.#d.records;
    const [units, raised, acknowledged, cleared, openExcursions, recentExcursions] = await Promise.all([
      r.listUnits(q.siteId),
      r.listAlarms({ ...site, state: "raised" }),
      r.listAlarms({ ...site, state: "acknowledged" }),
      r.listAlarms({ ...site, state: "cleared", from, to: now + 1 }),
      r.listExcursions({ ...site, open: true }),
      r.listExcursions({ ...site, from, to: now + 1 }),
    ]);
    const alarms = new Map<string, AlarmRecord>();
    for (const a of [...raised, ...acknowledged, ...cleared]) alarms.set(a.alarmId, a);
    const excursions = new Map<string, ExcursionRecord>();
    for (const e of [...openExcursions, ...recentExcursions]) excursions.set(e.excursionId, e);
    return {
      generatedAt: now,
      sites: await this.sites(q.siteId ? units : undefined),
      units: units.map((u) => ({ unitId: u.unitId, siteId: u.siteId, name: u.name ?? u.unitId })),
      alarms: [...alarms.values()].sort((a, b) => b.raisedAt - a.raisedAt),
      excursions: [...excursions.values()].sort((a, b) => b.startedAt - a.startedAt),
    };
  }

  /** Lots at a site, with their eligibility now. Undefined when the lots module is off. */
  async lots(siteId: string) {
    const lots = this.#d.lots?.();
    if (!lots) return undefined;
    return { generatedAt: this.#d.now(), lots: await lots.eligibility({ siteId }) };
  }

  async lot(lotId: string): Promise<LotView | undefined> {
    const lots = this.#d.lots?.();
    if (!lots) return undefined;
    const now = this.#d.now();
    const [lot, eligibility, holds, exposures] = await Promise.all([
      lots.getLot(lotId),
      lots.eligibility({ lotId }),
      lots.holds({ lotId }),
      lots.exposures(lotId),
    ]);
    if (!lot && eligibility.length === 0 && holds.length === 0) return undefined;
    const siteIds = new Set([...eligibility, ...holds, ...exposures].map((x) => x.siteId));
    // Where it has been: the lots module keeps occupancy per unit, so ask the units of its sites.
    const stays: LotView["stays"] = [];
    for (const siteId of siteIds) {
      for (const unit of await this.#d.records.listUnits(siteId)) {
        for (const o of await lots.occupancyIntervals(unit.unitId, 0, OPEN_END)) {
          if (o.lotId !== lotId) continue;
          stays.push({ unitId: unit.unitId, siteId: o.siteId, quantity: o.quantity, from: o.from, to: o.to });
        }
      }
    }
    stays.sort((a, b) => a.from - b.from || a.unitId.localeCompare(b.unitId));
    return {
      generatedAt: now,
      lotId,
      sku: lot?.sku ?? eligibility[0]?.sku ?? null,
      expiresAt: lot?.expiresAt ?? null,
      sites: [...siteIds].sort().map((id) => this.site(id)),
      eligibility,
      holds,
      exposures,
      stays,
    };
  }

  // ── live tiles ────────────────────────────────────────────────────────────────────────

  /** Prime the tile signatures (no events), then refresh every refreshMs while browsers listen. */
  async start(): Promise<void> {
    try {
      await this.refreshTiles();
    } catch (err) {
      this.#log.warn({ err }, "console tiles not primed; they will be on the next refresh");
    }
    this.#timer = setInterval(() => {
      if (this.#d.hub.subscribers > 0) this.#scheduleRefresh();
    }, this.#d.config.refreshMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
    this.#debounce = undefined;
    await this.#refreshing;
  }

  /** Readings of these units were stored: a unit in "gap" (or new) may be back. */
  readingsOf(unitIds: Iterable<string>): void {
    for (const u of unitIds) {
      if (this.#notOk.has(u) || !this.#signatures?.has(u)) {
        this.invalidate();
        return;
      }
    }
  }

  /** Something that may change a tile happened (an alarm, an agent state, a birth). */
  invalidate(): void {
    if (this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#scheduleRefresh();
    }, 100);
    this.#debounce.unref();
  }

  #scheduleRefresh(): void {
    if (this.#refreshing) {
      this.#again = true;
      return;
    }
    this.#refreshing = (async () => {
      try {
        do {
          this.#again = false;
          await this.refreshTiles();
        } while (this.#again);
      } catch (err) {
        this.#log.warn({ err }, "console tiles refresh failed");
      } finally {
        this.#refreshing = undefined;
      }
    })();
  }

  /** Re-derive every tile; publish a `unit` event for each one a person would see change. */
  async refreshTiles(): Promise<number> {
    const { units } = await this.fleet();
    const primed = this.#signatures !== undefined;
    const before = this.#signatures ?? new Map<string, string>();
    const after = new Map<string, string>();
    let changed = 0;
    this.#notOk.clear();
    for (const u of units) {
      if (u.state !== "ok") this.#notOk.add(u.unitId);
      const sig = tileSignature(u);
      after.set(u.unitId, sig);
      if (primed && before.get(u.unitId) !== sig) {
        changed++;
        this.#d.hub.publish("unit", u, { siteId: u.siteId, unitId: u.unitId });
      }
    }
    this.#signatures = after;
    return changed;
  }
}
