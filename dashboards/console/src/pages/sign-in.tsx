/**
 * Stage 1 sign-in: paste an API token (`coldtrace-gateway tokens create --name …`). TEMPORARY:
 * the QA records API brings user accounts (user ID and password, roles, sessions); this page
 * then asks for those instead, and nothing else in the console changes.
 */
import { useSignal } from "@preact/signals";
import { useLocation } from "preact-iso";
import { ApiError, api } from "../api.ts";
import { BASE } from "../app.tsx";
import { LanguageSwitch } from "../components/language-switch.tsx";
import { ErrorText } from "../components/page.tsx";
import { t } from "../i18n.ts";
import { clearToken, setToken } from "../token.ts";

export function SignInPage() {
  const { route } = useLocation();
  const error = useSignal<string | undefined>(undefined);
  const busy = useSignal(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const token = String(new FormData(e.currentTarget as HTMLFormElement).get("token") ?? "").trim();
    if (!token) {
      error.value = t("signIn.required");
      return;
    }
    busy.value = true;
    setToken(token);
    try {
      await api("/console/settings");
      route(`${BASE}/`);
    } catch (err) {
      clearToken();
      error.value =
        err instanceof ApiError && err.status === 401
          ? t("signIn.refused")
          : t("errors.loadFailed", { message: (err as Error).message });
    } finally {
      busy.value = false;
    }
  };
  return (
    <main class="page sign-in">
      <form class="sign-in-box" onSubmit={submit}>
        <h1>Coldtrace</h1>
        <p>{t("signIn.intro")}</p>
        <label class="field">
          <span>{t("signIn.token")}</span>
          <input name="token" type="password" autocomplete="off" spellcheck={false} required />
        </label>
        <p class="muted">{t("signIn.howTo")}</p>
        <p class="note">{t("signIn.temporary")}</p>
        {error.value ? <ErrorText message={error.value} /> : null}
        <div class="row">
          <button type="submit" class="primary" disabled={busy.value}>
            {t("signIn.submit")}
          </button>
          <LanguageSwitch />
        </div>
      </form>
    </main>
  );
}
