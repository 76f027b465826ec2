/**
 * Alarm and excursion inbox: what needs acknowledging first (it stands out: icon, word, a bar),
 * then open acknowledged alarms, then those cleared in the last 24 hours; open and recent
 * excursions below. New alarms and changes arrive live.
 */
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { type Alarm, api, type Excursion, type Inbox } from "../api.ts";
import { BASE } from "../app.tsx";
import { AckDialog } from "../components/ack-dialog.tsx";
import { Icon } from "../components/icons.tsx";
import { DataTable, PageError, PageLoading } from "../components/page.tsx";
import { celsius, dateTime, duration } from "../format.ts";
import { t } from "../i18n.ts";
import { epoch, on } from "../live.ts";
import { siteOf } from "../session.ts";

function upsert<T>(list: T[], item: T, key: (x: T) => string): T[] {
  const k = key(item);
  const i = list.findIndex((x) => key(x) === k);
  if (i < 0) return [item, ...list];
  const copy = list.slice();
  copy[i] = item;
  return copy;
}

function AlarmRow(props: { alarm: Alarm; unitName: string; onAck: () => void }) {
  const a = props.alarm;
  const tz = siteOf(a.siteId).timeZone;
  const needsAck = !a.acknowledged;
  return (
    <li class={`alarm-row${needsAck ? " unacked" : ""} alarm-${a.state}`} data-alarm={a.alarmId}>
      <div class="alarm-main">
        <span class={`badge alarm-state-${needsAck ? "unacked" : a.state}`}>
          <Icon name={needsAck ? "bell" : a.state === "cleared" ? "ok" : "alert"} />
          {needsAck ? t("inbox.needsAck") : t(`alarmState.${a.state}`)}
        </span>
        <a class="alarm-unit" href={`${BASE}/units/${encodeURIComponent(a.unitId)}`}>
          {props.unitName}
        </a>
        <span class="alarm-kind">
          {t(`alarmKind.${a.kind}`)}
          {a.tier ? ` · ${t(`tier.${a.tier}`)}` : ""}
          {a.side ? ` · ${t(`side.${a.side}`)}` : ""}
          {a.probeId ? ` · ${a.probeId}` : ""}
        </span>
      </div>
      <details class="alarm-message">
        <summary>{t("inbox.gatewayText")}</summary>
        <span lang="en">{a.message}</span>
      </details>
      <p class="alarm-times">
        {t("inbox.raisedAt", { when: dateTime(a.raisedAt, tz) })}
        {a.clearedAt ? ` · ${t("inbox.clearedAt", { when: dateTime(a.clearedAt, tz) })}` : ""}
      </p>
      {a.acknowledged ? (
        <p class="alarm-ack">
          {t("inbox.ackedBy", { by: a.acknowledged.by, action: a.acknowledged.correctiveAction })}
          {a.acknowledged.comment ? ` — ${t("inbox.commentIs", { comment: a.acknowledged.comment })}` : ""}
        </p>
      ) : (
        <button type="button" class="primary" onClick={props.onAck}>
          {t("inbox.acknowledge")}
        </button>
      )}
    </li>
  );
}

function ExcursionRow(props: { excursion: Excursion; unitName: string }) {
  const e = props.excursion;
  const tz = siteOf(e.siteId).timeZone;
  const open = e.endedAt === null;
  return (
    <tr data-excursion={e.excursionId}>
      <td>
        <span class={`badge tier-${e.tier}`}>
          <Icon name={e.tier === "action" ? "action" : "alert"} />
          {t(`tier.${e.tier}`)}
        </span>
      </td>
      <td>
        <a href={`${BASE}/units/${encodeURIComponent(e.unitId)}`}>{props.unitName}</a>
      </td>
      <td>{t(`side.${e.side}`)}</td>
      <td>{dateTime(e.startedAt, tz)}</td>
      <td>{open ? <strong>{t("inbox.ongoing")}</strong> : dateTime(e.endedAt, tz)}</td>
      <td>{duration(e.durationMs)}</td>
      <td>{celsius(e.side === "low" ? e.troughC : e.peakC)}</td>
      <td>{e.degreeMinutes.toFixed(1)}</td>
    </tr>
  );
}

export function InboxPage() {
  const inbox = useSignal<Inbox | undefined>(undefined);
  const error = useSignal<string | undefined>(undefined);
  const acking = useSignal<Alarm | undefined>(undefined);
  const e = epoch.value;
  useEffect(() => {
    api<Inbox>("/console/inbox?hours=24").then(
      (x) => {
        inbox.value = x;
        error.value = undefined;
      },
      (err: Error) => {
        error.value = err.message;
      },
    );
  }, [e]);
  useEffect(() => {
    const offAlarm = on("alarm", (data) => {
      if (inbox.value)
        inbox.value = { ...inbox.value, alarms: upsert(inbox.value.alarms, data as Alarm, (a) => a.alarmId) };
    });
    const offExcursion = on("excursion", (data) => {
      if (inbox.value)
        inbox.value = {
          ...inbox.value,
          excursions: upsert(inbox.value.excursions, data as Excursion, (x) => x.excursionId),
        };
    });
    return () => {
      offAlarm();
      offExcursion();
    };
  }, []);
  if (error.value) return <PageError message={t("errors.loadFailed", { message: error.value })} />;
  const x = inbox.value;
  if (!x) return <PageLoading />;
  const names = new Map(x.units.map((u) => [u.unitId, u.name]));
  const nameOf = (unitId: string) => names.get(unitId) ?? unitId;
  const unacked = x.alarms.filter((a) => !a.acknowledged && a.state !== "cleared");
  const unackedCleared = x.alarms.filter((a) => !a.acknowledged && a.state === "cleared");
  const acked = x.alarms.filter((a) => a.acknowledged);
  const section = (title: string, list: Alarm[], id: string) => (
    <section class="inbox-section" aria-labelledby={id}>
      <h2 id={id}>
        {title} <span class="count-plain">({list.length})</span>
      </h2>
      {list.length === 0 ? (
        <p class="empty">{t("inbox.none")}</p>
      ) : (
        <ul class="alarms">
          {list.map((a) => (
            <AlarmRow
              key={a.alarmId}
              alarm={a}
              unitName={nameOf(a.unitId)}
              onAck={() => {
                acking.value = a;
              }}
            />
          ))}
        </ul>
      )}
    </section>
  );
  return (
    <main class="page inbox">
      <div class="page-head">
        <h1>{t("inbox.title")}</h1>
        <p class="page-sub">{t("inbox.window", { hours: 24 })}</p>
      </div>
      {section(t("inbox.unacknowledged"), unacked, "sec-unacked")}
      {unackedCleared.length > 0
        ? section(t("inbox.unacknowledgedCleared"), unackedCleared, "sec-unacked-cleared")
        : null}
      {section(t("inbox.acknowledged"), acked, "sec-acked")}
      <section class="inbox-section" aria-labelledby="sec-excursions">
        <h2 id="sec-excursions">
          {t("inbox.excursions")} <span class="count-plain">({x.excursions.length})</span>
        </h2>
        {x.excursions.length === 0 ? (
          <p class="empty">{t("inbox.none")}</p>
        ) : (
          <DataTable
            head={[
              t("excursion.tier"),
              t("excursion.unit"),
              t("excursion.side"),
              t("excursion.started"),
              t("excursion.ended"),
              t("excursion.duration"),
              t("excursion.extreme"),
              t("excursion.degreeMinutes"),
            ]}
          >
            {x.excursions.map((ex) => (
              <ExcursionRow key={ex.excursionId} excursion={ex} unitName={nameOf(ex.unitId)} />
            ))}
          </DataTable>
        )}
      </section>
      <AckDialog
        alarm={acking.value}
        unitName={acking.value ? nameOf(acking.value.unitId) : ""}
        onClose={(updated) => {
          acking.value = undefined;
          if (updated && inbox.value)
            inbox.value = { ...inbox.value, alarms: upsert(inbox.value.alarms, updated, (a) => a.alarmId) };
        }}
      />
    </main>
  );
}
