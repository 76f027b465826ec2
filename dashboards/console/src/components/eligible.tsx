/** Eligible for transfer or not, as icon + word. */
import { t } from "../i18n.ts";
import { Icon } from "./icons.tsx";

export function Eligible(props: { eligible: boolean }) {
  return (
    <span class={`badge ${props.eligible ? "state-ok" : "state-action"}`}>
      <Icon name={props.eligible ? "ok" : "action"} />
      {props.eligible ? t("lot.eligible") : t("lot.notEligible")}
    </span>
  );
}
