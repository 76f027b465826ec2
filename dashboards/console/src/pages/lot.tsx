/**
 * One lot as it stands today: eligibility per site (why not, remaining stability budget),
 * holds and decisions, exposures, and the units it has been in. Live: eligibility and lot
 * events reload it. Stage 2 (QA records API) adds the passport across transit boxes, the
 * disposition form and the e-signature dialog, and the PDF/CSV; they go below the holds.
 */
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { useRoute } from "preact-iso";
import { ApiError, api, type Lot, qs } from "../api.ts";
import { BASE } from "../app.tsx";
import { Eligible } from "../components/eligible.tsx";
import { DataTable, PageError, PageLoading } from "../components/page.tsx";
import { celsius, dateTime } from "../format.ts";
import { t } from "../i18n.ts";
import { epoch, on } from "../live.ts";
import { siteOf } from "../session.ts";

const minutes = (v: number | null) =>
  v === null ? t("lot.noLimit") : t("lot.minutes", { count: Math.round(v) });

export function LotPage() {
  const { params } = useRoute();
  const lotId = params.lotId ?? "";
  const lot = useSignal<Lot | undefined>(undefined);
  const error = useSignal<string | undefined>(undefined);
  const version = useSignal(0);
  const e = epoch.value;
  useEffect(() => {
    api<Lot>(`/console/lot${qs({ lotId })}`).then(
      (l) => {
        lot.value = l;
        error.value = undefined;
      },
      (err: Error) => {
        error.value =
          err instanceof ApiError && err.status === 404 ? t("lot.notFound", { lotId }) : err.message;
      },
    );
  }, [lotId, e, version.value]);
  useEffect(() => {
    const mine = (data: unknown) => (data as { lotId?: string }).lotId === lotId;
    const reload = (data: unknown) => {
      if (mine(data)) version.value++;
    };
    const a = on("eligibility", reload);
    const b = on("lot", reload);
    return () => {
      a();
      b();
    };
  }, [lotId]);
  if (error.value) return <PageError message={error.value} />;
  const l = lot.value;
  if (!l) return <PageLoading />;
  const tz = (siteId: string) => siteOf(siteId).timeZone;
  return (
    <main class="page lot">
      <nav class="crumbs" aria-label={t("nav.breadcrumb")}>
        <a href={`${BASE}/lots`}>{t("lots.title")}</a> › <span>{l.lotId}</span>
      </nav>
      <div class="page-head">
        <h1>
          {t("lot.title", { lotId: l.lotId })} <span class="unit-kind">{l.sku ?? ""}</span>
        </h1>
      </div>
      <p class="muted">
        {t("lot.expiresOn", {
          when:
            l.expiresAt === null ? t("lot.noExpiry") : dateTime(l.expiresAt, tz(l.sites[0]?.siteId ?? "")),
        })}
      </p>
      <section aria-labelledby="elig-h">
        <h2 id="elig-h">{t("lot.eligibilityNow")}</h2>
        {l.eligibility.length === 0 ? (
          <p class="empty">{t("lot.noStock")}</p>
        ) : (
          <ul class="cards">
            {l.eligibility.map((el) => (
              <li class="card" data-site={el.siteId}>
                <h3>{siteOf(el.siteId).name}</h3>
                <Eligible eligible={el.eligible} />
                <dl class="facts">
                  <dt>{t("lot.status")}</dt>
                  <dd>{t(`lotStatus.${el.status}`)}</dd>
                  <dt>{t("lot.transferable")}</dt>
                  <dd>{el.transferableQuantity}</dd>
                  <dt>{t("lot.budgetHigh")}</dt>
                  <dd>{minutes(el.remainingBudgetMinutes.high)}</dd>
                  <dt>{t("lot.budgetLow")}</dt>
                  <dd>{minutes(el.remainingBudgetMinutes.low)}</dd>
                  <dt>{t("lot.updated")}</dt>
                  <dd>{dateTime(el.updatedAt, tz(el.siteId))}</dd>
                </dl>
                {el.reasons.length > 0 ? (
                  <ul class="reasons">
                    {el.reasons.map((r) => (
                      <li>{r}</li>
                    ))}
                  </ul>
                ) : null}
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="holds-h">
        <h2 id="holds-h">{t("lot.holds")}</h2>
        {l.holds.length === 0 ? (
          <p class="empty">{t("lot.noHolds")}</p>
        ) : (
          <DataTable
            head={[
              t("lot.status"),
              t("lot.unit"),
              t("lot.quantityHeader"),
              t("lot.reason"),
              t("lot.created"),
              t("lot.decision"),
            ]}
          >
            {l.holds.map((h) => (
              <tr data-hold={h.holdId}>
                <td>{t(`holdStatus.${h.status}`)}</td>
                <td>
                  <a href={`${BASE}/units/${encodeURIComponent(h.unitId)}`}>{h.unitId}</a>
                </td>
                <td class="num">{h.quantity}</td>
                <td>{h.reason}</td>
                <td>{dateTime(h.createdAt, tz(h.siteId))}</td>
                <td>
                  {h.decidedAt === null
                    ? t("lot.undecided")
                    : t("lot.decidedBy", {
                        by: h.decidedBy ?? "?",
                        when: dateTime(h.decidedAt, tz(h.siteId)),
                        reason: h.decidedReason ?? "",
                      })}
                </td>
              </tr>
            ))}
          </DataTable>
        )}
      </section>
      <section aria-labelledby="exp-h">
        <h2 id="exp-h">{t("lot.exposures")}</h2>
        {l.exposures.length === 0 ? (
          <p class="empty">{t("lot.noExposures")}</p>
        ) : (
          <DataTable
            head={[
              t("lot.cause"),
              t("lot.unit"),
              t("lot.from"),
              t("lot.to"),
              t("lot.minutesAbove"),
              t("lot.minutesBelow"),
              t("lot.peak"),
            ]}
          >
            {l.exposures.map((x) => (
              <tr>
                <td>
                  {t(`cause.${x.cause}`)}
                  {x.tier ? ` · ${t(`tier.${x.tier}`)}` : ""}
                </td>
                <td>
                  <a href={`${BASE}/units/${encodeURIComponent(x.unitId)}`}>{x.unitId}</a>
                </td>
                <td>{dateTime(x.from, tz(x.siteId))}</td>
                <td>{dateTime(x.to, tz(x.siteId))}</td>
                <td class="num">{x.minutesAbove.toFixed(0)}</td>
                <td class="num">{x.minutesBelow.toFixed(0)}</td>
                <td class="num">{celsius(x.side === "low" ? x.troughC : x.peakC)}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </section>
      <section aria-labelledby="stays-h">
        <h2 id="stays-h">{t("lot.stays")}</h2>
        {l.stays.length === 0 ? (
          <p class="empty">{t("lot.noStays")}</p>
        ) : (
          <DataTable head={[t("lot.unit"), t("lot.quantityHeader"), t("lot.from"), t("lot.to")]}>
            {l.stays.map((s) => (
              <tr>
                <td>
                  <a href={`${BASE}/units/${encodeURIComponent(s.unitId)}`}>{s.unitId}</a>
                </td>
                <td class="num">{s.quantity}</td>
                <td>{dateTime(s.from, tz(s.siteId))}</td>
                <td>{s.to === null ? t("lot.stillInside") : dateTime(s.to, tz(s.siteId))}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </section>
    </main>
  );
}
