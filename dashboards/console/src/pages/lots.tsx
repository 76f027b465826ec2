/** Lots at a site with their eligibility now (from the lots module), linking to each lot. */
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { useLocation } from "preact-iso";
import { api, type Eligibility, qs } from "../api.ts";
import { BASE } from "../app.tsx";
import { Eligible } from "../components/eligible.tsx";
import { DataTable, ErrorText } from "../components/page.tsx";
import { dateTime } from "../format.ts";
import { t } from "../i18n.ts";
import { epoch, on } from "../live.ts";
import { settings, siteOf } from "../session.ts";

export function LotsPage() {
  const { query, route } = useLocation();
  const sites = settings.value?.sites ?? [];
  const siteId = query.site ?? sites[0]?.siteId ?? "";
  const lots = useSignal<Eligibility[] | undefined>(undefined);
  const error = useSignal<string | undefined>(undefined);
  const e = epoch.value;
  useEffect(() => {
    if (!siteId) return;
    lots.value = undefined;
    api<{ lots: Eligibility[] }>(`/console/lots${qs({ siteId })}`).then(
      (r) => {
        lots.value = r.lots;
        error.value = undefined;
      },
      (err: Error) => {
        error.value = err.message;
      },
    );
  }, [siteId, e]);
  useEffect(
    () =>
      on("eligibility", (data) => {
        const el = data as Eligibility;
        if (!lots.value || el.siteId !== siteId) return;
        const rest = lots.value.filter((l) => l.lotId !== el.lotId);
        lots.value = [...rest, el].sort((a, b) => a.lotId.localeCompare(b.lotId));
      }),
    [siteId],
  );
  const tz = siteOf(siteId).timeZone;
  return (
    <main class="page lots">
      <div class="page-head">
        <h1>{t("lots.title")}</h1>
        <label class="field inline">
          <span>{t("overview.site")}</span>
          <select
            value={siteId}
            onChange={(ev) =>
              route(
                `${BASE}/lots?site=${encodeURIComponent((ev.currentTarget as HTMLSelectElement).value)}`,
                true,
              )
            }
          >
            {sites.map((s) => (
              <option value={s.siteId}>{s.name}</option>
            ))}
          </select>
        </label>
      </div>
      {error.value ? <ErrorText message={t("errors.loadFailed", { message: error.value })} /> : null}
      {!lots.value && !error.value ? <p class="loading">{t("common.loading")}</p> : null}
      {lots.value && lots.value.length === 0 ? <p class="empty">{t("lots.none")}</p> : null}
      {lots.value && lots.value.length > 0 ? (
        <DataTable
          head={[
            t("lot.lot"),
            t("lot.sku"),
            t("lot.eligibility"),
            t("lot.status"),
            t("lot.transferable"),
            t("lot.expires"),
          ]}
        >
          {lots.value.map((l) => (
            <tr data-lot={l.lotId}>
              <th scope="row">
                <a href={`${BASE}/lots/${encodeURIComponent(l.lotId)}`}>{l.lotId}</a>
              </th>
              <td>{l.sku}</td>
              <td>
                <Eligible eligible={l.eligible} />
              </td>
              <td>{t(`lotStatus.${l.status}`)}</td>
              <td class="num">{l.transferableQuantity}</td>
              <td>{dateTime(l.expiresAt, tz)}</td>
            </tr>
          ))}
        </DataTable>
      ) : null}
    </main>
  );
}
