/**
 * One unit: its state and why, every probe's latest value, calibration and driver, the agent,
 * the chart of every probe with the limits and excursions (1 hour to 30 days), the profile in
 * force, and the lots inside now. Stage 2 adds the profile's change history and the limit
 * change request (both need the QA records API's audit trail and approvals).
 */
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { useRoute } from "preact-iso";
import { ApiError, api, type UnitDetail } from "../api.ts";
import { BASE } from "../app.tsx";
import { DataTable, PageError, PageLoading } from "../components/page.tsx";
import { StateBadge } from "../components/state-badge.tsx";
import { UnitChart } from "../components/unit-chart.tsx";
import { celsius, dateTime, duration, range, relative } from "../format.ts";
import { t } from "../i18n.ts";
import { epoch } from "../live.ts";
import { tiles } from "../session.ts";

export function UnitPage() {
  const { params } = useRoute();
  const unitId = params.unitId ?? "";
  const detail = useSignal<UnitDetail | undefined>(undefined);
  const error = useSignal<string | undefined>(undefined);
  const e = epoch.value;
  useEffect(() => {
    detail.value = undefined;
    api<UnitDetail>(`/console/units/${encodeURIComponent(unitId)}`).then(
      (d) => {
        detail.value = d;
        error.value = undefined;
      },
      (err: Error) => {
        error.value =
          err instanceof ApiError && err.status === 404 ? t("unit.notFound", { unitId }) : err.message;
      },
    );
  }, [unitId, e]);
  if (error.value) return <PageError message={error.value} />;
  const d = detail.value;
  if (!d) return <PageLoading />;
  // The live tile (same unit) carries the newest readings and state.
  const u = tiles.get(unitId)?.value ?? d.unit;
  const tz = d.site.timeZone;
  const profile = d.profile;
  const intervalMs = Math.min(
    ...d.probes.map((p) => p.intervalMs ?? Number.POSITIVE_INFINITY),
    profile?.recordMs ?? 60_000,
  );
  const probeInfo = new Map(d.probes.map((p) => [p.probeId, p]));
  return (
    <main class="page unit">
      <nav class="crumbs" aria-label={t("nav.breadcrumb")}>
        <a href={`${BASE}/?site=${encodeURIComponent(d.site.siteId)}`}>{d.site.name}</a> ›{" "}
        <span>{u.name}</span>
      </nav>
      <div class="page-head">
        <h1>
          {u.name} <span class="unit-kind">{t(`kind.${u.kind}`)}</span>
        </h1>
        <StateBadge state={u.state} large />
      </div>
      <p class="reason">{t(`reason.${u.reason}`)}</p>
      <section aria-labelledby="probes-h">
        <h2 id="probes-h">{t("unit.probes")}</h2>
        <DataTable
          head={[
            t("unit.probe"),
            t("unit.temperature"),
            t("unit.observedAt"),
            t("unit.quality"),
            t("unit.calibration"),
            t("unit.driver"),
          ]}
        >
          {u.probes.map((p) => (
            <tr data-probe={p.probeId}>
              <th scope="row">{p.probeId}</th>
              <td class="num">{celsius(p.tempC)}</td>
              <td>
                {dateTime(p.observedAt, tz)} <span class="muted">({relative(p.observedAt)})</span>
              </td>
              <td>{p.quality ? t(`quality.${p.quality}`) : "—"}</td>
              <td>
                {t(`calibration.${p.calibration}`)}
                {p.calibrationDueAt ? ` · ${dateTime(p.calibrationDueAt, tz)}` : ""}
              </td>
              <td>
                {probeInfo.get(p.probeId)?.driver ?? "—"}
                {probeInfo.get(p.probeId)?.intervalMs
                  ? ` · ${t("unit.every", { interval: duration(probeInfo.get(p.probeId)?.intervalMs ?? 0) })}`
                  : ""}
              </td>
            </tr>
          ))}
        </DataTable>
        <p class="muted">
          {u.agent
            ? t(u.agent.state === "online" ? "unit.agentOnline" : "unit.agentOffline", {
                agent: u.agent.agentId,
                when: dateTime(u.agent.lastSeenAt, tz),
              })
            : t("overview.noAgent")}
        </p>
      </section>
      <section aria-labelledby="chart-h">
        <h2 id="chart-h">{t("unit.chart")}</h2>
        <UnitChart
          unitId={unitId}
          probeIds={u.probes.map((p) => p.probeId)}
          intervalMs={Number.isFinite(intervalMs) ? intervalMs : 60_000}
          timeZone={tz}
          limits={{
            range: profile?.range ?? u.range,
            action: profile?.action ?? { low: null, high: null },
          }}
        />
      </section>
      <div class="two-col">
        <section aria-labelledby="profile-h">
          <h2 id="profile-h">{t("unit.profile")}</h2>
          {profile ? (
            <dl class="facts">
              <dt>{t("unit.profileSource")}</dt>
              <dd>{t(`profileSource.${profile.source}`)}</dd>
              <dt>{t("unit.range")}</dt>
              <dd>{range(profile.range)}</dd>
              <dt>{t("unit.alertLimits")}</dt>
              <dd>
                {range(profile.alert)} · {t("unit.after", { delay: duration(profile.delayMs.alert) })}
              </dd>
              <dt>{t("unit.actionLimits")}</dt>
              <dd>
                {range(profile.action)} · {t("unit.after", { delay: duration(profile.delayMs.action) })}
              </dd>
              <dt>{t("unit.hysteresis")}</dt>
              <dd>{profile.hysteresisC} °C</dd>
              <dt>{t("unit.maxGap")}</dt>
              <dd>{duration(profile.maxGapMs)}</dd>
              <dt>{t("unit.recordEvery")}</dt>
              <dd>{duration(profile.recordMs)}</dd>
            </dl>
          ) : (
            <p class="error">{t("unit.profileInvalid")}</p>
          )}
        </section>
        <section aria-labelledby="lots-h">
          <h2 id="lots-h">{t("unit.lotsInside")}</h2>
          {d.lots.length === 0 ? (
            <p class="empty">{t("unit.noLots")}</p>
          ) : (
            <ul class="plain">
              {d.lots.map((l) => (
                <li>
                  <a href={`${BASE}/lots/${encodeURIComponent(l.lotId)}`}>{l.lotId}</a> ·{" "}
                  {t("lot.quantity", { count: l.quantity })}
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
    </main>
  );
}
