/**
 * Fleet overview: every site, its units worst first, readable at a glance on a store's tablet.
 * Each tile: name, state (icon + word), every probe's temperature, the range, how old the
 * newest reading is, the agent, unacknowledged alarms, probe faults, calibration due. A tile is
 * a link to the unit page (Tab + Enter). Temperatures and states change without reload.
 */
import type { Signal } from "@preact/signals";
import { useLocation } from "preact-iso";
import type { UnitTile } from "../api.ts";
import { BASE } from "../app.tsx";
import { Icon } from "../components/icons.tsx";
import { PageError, PageLoading } from "../components/page.tsx";
import { StateBadge } from "../components/state-badge.tsx";
import { celsius, range, relative } from "../format.ts";
import { t } from "../i18n.ts";
import { fleetError, fleetLoaded, order, settings, siteOf, tiles } from "../session.ts";

const STATES = ["action", "alert", "offline", "gap", "ok"] as const;

function Tile(props: { tile: Signal<UnitTile> }) {
  const u = props.tile.value;
  const faults = u.probes.filter((p) => p.fault).length;
  const overdue = u.probes.some((p) => p.calibration === "overdue");
  const dueSoon = !overdue && u.probes.some((p) => p.calibration === "due_soon");
  return (
    <li class={`tile state-${u.state}`} data-unit={u.unitId} data-state={u.state}>
      <a href={`${BASE}/units/${encodeURIComponent(u.unitId)}`} class="tile-link">
        <div class="tile-head">
          <span class="tile-name">{u.name}</span>
          <StateBadge state={u.state} />
        </div>
        <p class="tile-reason">{t(`reason.${u.reason}`)}</p>
        <ul class="temps" aria-label={t("overview.probes")}>
          {u.probes.map((p) => (
            <li class={p.fault ? "temp fault" : "temp"} data-probe={p.probeId}>
              <span class="temp-value">{p.tempC === null ? "—" : celsius(p.tempC)}</span>
              <span class="temp-probe">{p.probeId.replace(`${u.unitId}-`, "")}</span>
            </li>
          ))}
          {u.probes.length === 0 ? <li class="temp">{t("overview.noProbes")}</li> : null}
        </ul>
        <div class="tile-meta">
          <span>{t("overview.range", { range: range(u.range) })}</span>
          <span>{t("overview.lastReading", { when: relative(u.lastReadingAt) })}</span>
        </div>
        <div class="flags">
          {u.agent === null ? (
            <span class="flag flag-bad">
              <Icon name="offline" />
              {t("overview.noAgent")}
            </span>
          ) : u.agent.state === "offline" ? (
            <span class="flag flag-bad">
              <Icon name="offline" />
              {t("overview.agentOffline", { when: relative(u.agent.lastSeenAt) })}
            </span>
          ) : null}
          {u.unacknowledgedAlarms > 0 ? (
            <span class="flag flag-bad">
              <Icon name="bell" />
              {t("overview.unacknowledged", { count: u.unacknowledgedAlarms })}
            </span>
          ) : u.openAlarms > 0 ? (
            <span class="flag">
              <Icon name="bell" />
              {t("overview.openAlarms", { count: u.openAlarms })}
            </span>
          ) : null}
          {faults > 0 ? (
            <span class="flag flag-bad">
              <Icon name="fault" />
              {t("overview.probeFaults", { count: faults })}
            </span>
          ) : null}
          {overdue ? (
            <span class="flag flag-bad">
              <Icon name="calibration" />
              {t("overview.calibrationOverdue")}
            </span>
          ) : dueSoon ? (
            <span class="flag">
              <Icon name="calibration" />
              {t("overview.calibrationDueSoon")}
            </span>
          ) : null}
        </div>
      </a>
    </li>
  );
}

function Summary(props: { units: UnitTile[] }) {
  const counts = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<(typeof STATES)[number], number>;
  for (const u of props.units) counts[u.state]++;
  return (
    <ul class="summary" aria-label={t("overview.summary")}>
      {STATES.map((s) => (
        <li class={`summary-item state-${s}${counts[s] === 0 ? " zero" : ""}`}>
          <StateBadge state={s} />
          <strong>{counts[s]}</strong>
        </li>
      ))}
    </ul>
  );
}

export function OverviewPage() {
  const { query, route } = useLocation();
  const siteFilter = query.site ?? "";
  // Only `order` is read as a signal here: a reading re-renders its tile, not the page
  // (peek()). Every state change re-sorts `order`, so the summary and the grouping stay right.
  const ids = order.value;
  const list = ids
    .map((id) => tiles.get(id))
    .filter((s): s is Signal<UnitTile> => s !== undefined && (!siteFilter || s.peek().siteId === siteFilter));
  if (fleetError.value && !fleetLoaded.value)
    return <PageError message={t("errors.loadFailed", { message: fleetError.value })} />;
  if (!fleetLoaded.value) return <PageLoading />;
  // Sites in order of their worst unit (the list is worst first).
  const bySite = Map.groupBy(list, (s) => s.peek().siteId);
  const sites = settings.value?.sites ?? [];
  return (
    <main class="page overview">
      <div class="page-head">
        <h1>{t("overview.title")}</h1>
        <label class="field inline">
          <span>{t("overview.site")}</span>
          <select
            value={siteFilter}
            onChange={(e) => {
              const v = (e.currentTarget as HTMLSelectElement).value;
              route(v ? `${BASE}/?site=${encodeURIComponent(v)}` : `${BASE}/`, true);
            }}
          >
            <option value="">{t("overview.allSites")}</option>
            {sites.map((s) => (
              <option value={s.siteId}>{s.name}</option>
            ))}
          </select>
        </label>
      </div>
      <Summary units={list.map((s) => s.peek())} />
      {list.length === 0 ? <p class="empty">{t("overview.empty")}</p> : null}
      {[...bySite].map(([siteId, units]) => {
        const site = siteOf(siteId);
        return (
          <section class="site" aria-labelledby={`site-${siteId}`}>
            <h2 id={`site-${siteId}`}>
              {site.name}
              <span class="site-meta">
                {t("overview.siteMeta", { count: units.length, zone: site.timeZone })}
              </span>
            </h2>
            <ul class="tiles">
              {units.map((s) => (
                <Tile key={s.peek().unitId} tile={s} />
              ))}
            </ul>
          </section>
        );
      })}
    </main>
  );
}
