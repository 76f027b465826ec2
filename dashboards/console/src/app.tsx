/**
 * The console's frame: header with navigation, the live connection state (icon + words, and a
 * banner while the connection is lost), the language switch; then the page for the URL.
 *
 *   /console/                  fleet overview
 *   /console/inbox             alarm and excursion inbox
 *   /console/units/:unitId     one unit: chart, profile, probes
 *   /console/lots              lots at a site
 *   /console/lots/:lotId       one lot
 *   /console/sign-in           stage 1: API token (user accounts come with the QA records API)
 *
 * Stage 2 adds /console/excursions/:id (report, disposition and signature) and /console/audit;
 * they slot into the router below.
 */
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { LocationProvider, Route, Router, useLocation } from "preact-iso";
import { setUnauthorizedHandler } from "./api.ts";
import { Icon } from "./components/icons.tsx";
import { LanguageSwitch } from "./components/language-switch.tsx";
import { PageError, PageLoading } from "./components/page.tsx";
import { t } from "./i18n.ts";
import { connection, epoch, startLive, stopLive } from "./live.ts";
import { InboxPage } from "./pages/inbox.tsx";
import { LotPage } from "./pages/lot.tsx";
import { LotsPage } from "./pages/lots.tsx";
import { OverviewPage } from "./pages/overview.tsx";
import { SignInPage } from "./pages/sign-in.tsx";
import { UnitPage } from "./pages/unit.tsx";
import { loadFleet, loadSettings, settings, unacknowledged } from "./session.ts";
import { clearToken, getToken } from "./token.ts";

export const BASE = "/console";

function ConnectionState() {
  const c = connection.value;
  return (
    <span class={`connection conn-${c}`} role="status" aria-live="polite">
      <Icon name={c === "live" ? "live" : "lost"} />
      {t(`connection.${c}`)}
    </span>
  );
}

function Header() {
  const { path } = useLocation();
  const link = (href: string, label: string, extra?: preact.ComponentChildren) => {
    const current = href === `${BASE}/` ? path === href : path.startsWith(href);
    return (
      <a href={href} class="nav-link" aria-current={current ? "page" : undefined}>
        {label}
        {extra}
      </a>
    );
  };
  const n = unacknowledged.value;
  return (
    <header class="top">
      <a class="brand" href={`${BASE}/`}>
        Coldtrace
      </a>
      <nav aria-label={t("nav.main")}>
        {link(`${BASE}/`, t("nav.overview"))}
        {link(
          `${BASE}/inbox`,
          t("nav.inbox"),
          n > 0 ? (
            <span class="count" title={t("inbox.unacknowledgedCount", { count: n })}>
              <Icon name="bell" />
              {n}
            </span>
          ) : null,
        )}
        {link(`${BASE}/lots`, t("nav.lots"))}
      </nav>
      <div class="top-right">
        <ConnectionState />
        <LanguageSwitch />
        <span class="who" title={t("nav.signedInAs")}>
          {settings.value?.signedInAs}
        </span>
        <button
          type="button"
          class="link-button"
          onClick={() => {
            clearToken();
            stopLive();
            location.assign(`${BASE}/sign-in`);
          }}
        >
          {t("nav.signOut")}
        </button>
      </div>
    </header>
  );
}

function LostBanner() {
  if (connection.value !== "lost") return null;
  return (
    <div class="banner banner-lost" role="alert">
      <Icon name="lost" />
      {t("connection.lostBanner")}
    </div>
  );
}

function NotFound() {
  return (
    <main class="page">
      <h1>{t("notFound.title")}</h1>
      <p>
        <a href={`${BASE}/`}>{t("notFound.back")}</a>
      </p>
    </main>
  );
}

/** Everything behind sign-in: loads settings and the fleet once, then keeps them live. */
function SignedIn() {
  const ready = useSignal(false);
  const error = useSignal<string | undefined>(undefined);
  const { route } = useLocation();
  useEffect(() => {
    setUnauthorizedHandler(() => {
      stopLive();
      route(`${BASE}/sign-in`);
    });
    // Settings and the fleet together: the overview is the first page most people see.
    startLive();
    void loadFleet();
    loadSettings()
      .then(() => {
        ready.value = true;
      })
      .catch((err: Error) => {
        error.value = err.message;
      });
  }, []);
  // The fleet feeds the overview and the inbox badge; reload it after a gap in the stream.
  const e = epoch.value;
  useEffect(() => {
    if (e > 0) void loadFleet();
  }, [e]);
  if (error.value) {
    return <PageError message={t("errors.loadFailed", { message: error.value })} />;
  }
  if (!ready.value) return <PageLoading />;
  return (
    <>
      <Header />
      <LostBanner />
      <Router>
        <Route path={`${BASE}/`} component={OverviewPage} />
        <Route path={`${BASE}/inbox`} component={InboxPage} />
        <Route path={`${BASE}/units/:unitId`} component={UnitPage} />
        <Route path={`${BASE}/lots`} component={LotsPage} />
        <Route path={`${BASE}/lots/:lotId`} component={LotPage} />
        <Route default component={NotFound} />
      </Router>
    </>
  );
}

function Gate() {
  const { path, route } = useLocation();
  const signingIn = path === `${BASE}/sign-in`;
  useEffect(() => {
    if (!signingIn && !getToken()) route(`${BASE}/sign-in`, true);
  }, [signingIn]);
  if (signingIn) return <SignInPage />;
  if (!getToken()) return null;
  return <SignedIn />;
}

export function App() {
  return (
    <LocationProvider scope={BASE}>
      <Gate />
    </LocationProvider>
  );
}
