/** Page furniture every page shares: the loading and error states, a scrolling data table. */
import type { ComponentChildren } from "preact";
import { t } from "../i18n.ts";

export function ErrorText(props: { message: string }) {
  return (
    <p class="error" role="alert">
      {props.message}
    </p>
  );
}

export function PageError(props: { message: string }) {
  return (
    <main class="page">
      <ErrorText message={props.message} />
    </main>
  );
}

export function PageLoading() {
  return <main class="page loading">{t("common.loading")}</main>;
}

/** A table that scrolls inside its frame on a narrow screen instead of widening the page. */
export function DataTable(props: { head: readonly string[]; children: ComponentChildren }) {
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            {props.head.map((h) => (
              <th>{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}
