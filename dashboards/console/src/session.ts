/**
 * What every page shares once signed in: the console settings (sites and their time zones, who
 * is signed in) and the fleet's tiles, kept current by the live stream.
 *
 * Tiles are one signal each, so a reading re-renders only its unit's tile (the overview stays
 * fast with 500 units); `order` changes only when a tile's state does.
 */
import { computed, type Signal, signal } from "@preact/signals";
import { api, type Fleet, type Reading, type Settings, type Site, type UnitTile } from "./api.ts";
import { applyDefaultLanguage } from "./i18n.ts";
import { on } from "./live.ts";

export const settings = signal<Settings | undefined>(undefined);
export const tiles = new Map<string, Signal<UnitTile>>();
/** Unit ids, worst first (the gateway's order, kept as tiles change). */
export const order = signal<string[]>([]);
export const fleetLoaded = signal(false);
export const fleetError = signal<string | undefined>(undefined);

export function siteOf(siteId: string): Site {
  return (
    settings.value?.sites.find((s) => s.siteId === siteId) ?? {
      siteId,
      name: siteId,
      timeZone: settings.value?.defaultTimeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone,
    }
  );
}

export async function loadSettings(): Promise<Settings> {
  const s = await api<Settings>("/console/settings");
  settings.value = s;
  applyDefaultLanguage(s.defaultLanguage);
  return s;
}

const RANK: Record<UnitTile["state"], number> = { action: 0, alert: 1, offline: 2, gap: 3, ok: 4 };

/** The gateway's worst-first order (gateway/src/console/fleet.ts `worstFirst`). */
function worstFirst(a: UnitTile, b: UnitTile): number {
  return (
    RANK[a.state] - RANK[b.state] ||
    b.unacknowledgedAlarms - a.unacknowledgedAlarms ||
    a.siteId.localeCompare(b.siteId) ||
    a.name.localeCompare(b.name, undefined, { numeric: true }) ||
    a.unitId.localeCompare(b.unitId)
  );
}

function resort(): void {
  order.value = [...tiles.values()]
    .map((s) => s.value)
    .sort(worstFirst)
    .map((u) => u.unitId);
}

export async function loadFleet(): Promise<void> {
  try {
    const fleet = await api<Fleet>("/console/fleet");
    performance.mark("ct:fleet-fetched");
    for (const u of fleet.units) {
      const s = tiles.get(u.unitId);
      if (s) s.value = u;
      else tiles.set(u.unitId, signal(u));
    }
    const known = new Set(fleet.units.map((u) => u.unitId));
    for (const id of [...tiles.keys()]) if (!known.has(id)) tiles.delete(id);
    order.value = fleet.units.map((u) => u.unitId);
    if (settings.value) {
      // Sites seen for the first time (a new store's agent) join the settings' list.
      const have = new Set(settings.value.sites.map((s) => s.siteId));
      const extra = fleet.sites.filter((s) => !have.has(s.siteId));
      if (extra.length > 0)
        settings.value = { ...settings.value, sites: [...settings.value.sites, ...extra] };
    }
    fleetError.value = undefined;
    fleetLoaded.value = true;
  } catch (err) {
    fleetError.value = (err as Error).message;
  }
}

/** Unacknowledged alarms across the fleet (the inbox badge). */
export const unacknowledged = computed(() => {
  void order.value;
  let n = 0;
  for (const s of tiles.values()) n += s.value.unacknowledgedAlarms;
  return n;
});

on("readings", (data) => {
  const { readings } = data as { readings: Reading[] };
  const byUnit = Map.groupBy(readings, (r) => r.unitId);
  for (const [unitId, rs] of byUnit) {
    const s = tiles.get(unitId);
    if (!s) continue;
    const probes = new Map(s.value.probes.map((p) => [p.probeId, p]));
    let last = s.value.lastReadingAt;
    for (const r of rs) {
      const p = probes.get(r.probeId);
      if (p?.observedAt !== null && p?.observedAt !== undefined && p.observedAt > r.observedAt) continue;
      probes.set(r.probeId, {
        ...(p ?? { probeId: r.probeId, fault: false, calibrationDueAt: null, calibration: "unknown" }),
        tempC: r.tempC,
        quality: r.quality,
        observedAt: r.observedAt,
        receivedAt: r.receivedAt,
        // A fault the last reading did not explain came from an open probe_fault alarm: keep it.
        fault: r.quality !== "ok" || (p?.fault === true && p.quality === "ok"),
      });
      if (last === null || r.observedAt > last) last = r.observedAt;
    }
    s.value = {
      ...s.value,
      probes: [...probes.values()].sort((a, b) => a.probeId.localeCompare(b.probeId)),
      lastReadingAt: last,
    };
  }
});

on("unit", (data) => {
  const u = data as UnitTile;
  const s = tiles.get(u.unitId);
  if (s) {
    // Keep temperatures that arrived after the gateway derived this tile.
    const newer = new Map(s.value.probes.map((p) => [p.probeId, p]));
    u.probes = u.probes.map((p) => {
      const mine = newer.get(p.probeId);
      return mine?.observedAt != null && (p.observedAt === null || mine.observedAt > p.observedAt)
        ? {
            ...p,
            tempC: mine.tempC,
            quality: mine.quality,
            observedAt: mine.observedAt,
            receivedAt: mine.receivedAt,
          }
        : p;
    });
    s.value = u;
  } else {
    tiles.set(u.unitId, signal(u));
  }
  resort();
});

on("agent", (data) => {
  const a = data as { agentId: string; state: "online" | "offline"; lastSeenAt: number };
  for (const s of tiles.values()) {
    const agent = s.value.agent;
    if (agent?.agentId === a.agentId) {
      s.value = { ...s.value, agent: { agentId: agent.agentId, state: a.state, lastSeenAt: a.lastSeenAt } };
    }
  }
});
