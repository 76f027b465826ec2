/**
 * Acknowledge an alarm with the action taken and a comment (POST /api/v1/alarms/{id}/acknowledge).
 * A native <dialog>: focus moves into it, Esc closes it, Tab stays inside.
 *
 * Stage 1: "acknowledged by" is typed (remembered in this browser); with user accounts it is
 * the signed-in person, and the QA records API records it in the audit trail.
 */
import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { type Alarm, api } from "../api.ts";
import { dateTime } from "../format.ts";
import { t } from "../i18n.ts";
import { siteOf } from "../session.ts";
import { ErrorText } from "./page.tsx";

const BY_KEY = "coldtrace.console.ackBy";
export const ACTIONS = [
  "door_closed",
  "unit_serviced",
  "product_moved",
  "probe_checked",
  "false_alarm",
  "other",
];

export function AckDialog(props: {
  alarm: Alarm | undefined;
  unitName: string;
  onClose: (acknowledged?: Alarm) => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const error = useSignal<string | undefined>(undefined);
  const busy = useSignal(false);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.alarm && !d.open) {
      error.value = undefined;
      d.showModal();
    } else if (!props.alarm && d.open) d.close();
  }, [props.alarm]);

  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const by = String(data.get("by") ?? "").trim();
    const action = String(data.get("action") ?? "");
    const detail = String(data.get("actionDetail") ?? "").trim();
    const comment = String(data.get("comment") ?? "").trim();
    if (!by) {
      error.value = t("ack.byRequired");
      return;
    }
    if (!action || (action === "other" && !detail)) {
      error.value = t("ack.actionRequired");
      return;
    }
    const correctiveAction =
      action === "other"
        ? detail
        : detail
          ? t("ack.actionWithDetail", { action: t(`ack.actions.${action}`), detail })
          : t(`ack.actions.${action}`);
    busy.value = true;
    try {
      localStorage.setItem(BY_KEY, by);
      const alarm = props.alarm as Alarm;
      const updated = await api<Alarm>(`/alarms/${encodeURIComponent(alarm.alarmId)}/acknowledge`, {
        method: "POST",
        body: { by, comment, correctiveAction },
      });
      form.reset();
      props.onClose(updated);
    } catch (err) {
      error.value = t("ack.failed", { message: (err as Error).message });
    } finally {
      busy.value = false;
    }
  };

  const a = props.alarm;
  return (
    <dialog ref={ref} class="dialog" aria-labelledby="ack-title" onClose={() => props.onClose()}>
      {a ? (
        <form method="dialog" onSubmit={submit}>
          <h2 id="ack-title">{t("ack.title")}</h2>
          <p class="dialog-sub">
            {props.unitName} · {t(`alarmKind.${a.kind}`)}
            {a.tier ? ` · ${t(`tier.${a.tier}`)}` : ""}
          </p>
          <p class="dialog-message">
            {t("inbox.raisedAt", { when: dateTime(a.raisedAt, siteOf(a.siteId).timeZone) })}
            {a.probeId ? ` · ${a.probeId}` : ""}
            {a.side ? ` · ${t(`side.${a.side}`)}` : ""}
          </p>
          <label class="field">
            <span>{t("ack.by")}</span>
            <input
              name="by"
              required
              maxLength={128}
              autocomplete="name"
              value={localStorage.getItem(BY_KEY) ?? ""}
            />
          </label>
          <label class="field">
            <span>{t("ack.action")}</span>
            <select name="action" required>
              <option value="">{t("ack.choose")}</option>
              {ACTIONS.map((x) => (
                <option value={x}>{t(`ack.actions.${x}`)}</option>
              ))}
            </select>
          </label>
          <label class="field">
            <span>{t("ack.actionDetail")}</span>
            <input name="actionDetail" maxLength={1000} />
          </label>
          <label class="field">
            <span>{t("ack.comment")}</span>
            <textarea name="comment" rows={3} maxLength={2000} />
          </label>
          {error.value ? <ErrorText message={error.value} /> : null}
          <div class="dialog-buttons">
            <button type="button" onClick={() => props.onClose()}>
              {t("common.cancel")}
            </button>
            <button type="submit" class="primary" disabled={busy.value}>
              {t("ack.submit")}
            </button>
          </div>
        </form>
      ) : null}
    </dialog>
  );
}
