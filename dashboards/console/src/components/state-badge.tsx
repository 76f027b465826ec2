/** A unit's state as icon + word (and colour), e.g. "⯃ Action". */
import type { UnitState } from "../api.ts";
import { t } from "../i18n.ts";
import { Icon } from "./icons.tsx";

export function StateBadge(props: { state: UnitState; large?: boolean }) {
  return (
    <span class={`badge state-${props.state}${props.large ? " large" : ""}`}>
      <Icon name={props.state} />
      <span>{t(`state.${props.state}`)}</span>
    </span>
  );
}
