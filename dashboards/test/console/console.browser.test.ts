/**
 * The web console end to end, in Debian's Chromium (playwright-core), against a running gateway
 * with simulated edge agents (simulators/ Fleet) publishing over MQTT:
 *
 * - an excursion appears on the overview without reload (live stream → tile turns "Action");
 * - it is acknowledged with the action taken and a comment, in the inbox's dialog, and the
 *   gateway's record says so;
 * - the zh-CN console shows Chinese on every page checked (and none of the English strings);
 * - a 1024 × 768 tablet shows the overview without horizontal scrolling;
 * - a lost connection is shown, and the page comes back live by itself;
 * - the overview is usable with the keyboard alone.
 *
 * Under CI=true a missing Chromium fails the suite (requireService).
 */
import { readFileSync } from "node:fs";
import { requireService } from "@coldtrace/testkit";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Browser, MIN, openBrowser, type Stack, settled, signIn, startStack, until } from "./harness.ts";

const HOUR = 60 * MIN;
const locales = (lang: string) =>
  JSON.parse(
    readFileSync(new URL(`../../console/src/locales/${lang}.json`, import.meta.url), "utf8"),
  ) as Record<string, unknown>;
const en = locales("en");
const zh = locales("zh-CN");

function leaves(o: unknown, prefix = ""): Map<string, string> {
  const out = new Map<string, string>();
  if (typeof o === "string") out.set(prefix, o);
  else if (o && typeof o === "object")
    for (const [k, v] of Object.entries(o))
      for (const [kk, vv] of leaves(v, prefix ? `${prefix}.${k}` : k)) out.set(kk, vv);
  return out;
}
const zhLeaves = leaves(zh);
const get = (tree: Map<string, string>, key: string) => tree.get(key) ?? tree.get(`${key}_other`) ?? "";
/**
 * English UI strings a zh-CN page must not show: the English text (without its placeholders)
 * of every key whose Chinese text differs, at least 4 letters long (so "OK" or "SKU" in data
 * cannot match by accident).
 */
const englishOnly = [...leaves(en)]
  .filter(([k, v]) => v !== get(zhLeaves, k.replace(/_(one|other)$/, "")))
  .flatMap(([, v]) => v.split(/\{\{[^}]+\}\}/))
  .map((s) => s.trim())
  .filter((s) => /[A-Za-z]{4,}/.test(s) && s.length >= 6);

const CJK = /[\u4e00-\u9fff]/;

const chromium = await requireService("chromium");

describe.skipIf(!chromium.available)(`console in Chromium ${chromium.reason}`, () => {
  let stack: Stack;
  let browser: Browser;
  const prefix = `cb${Date.now().toString(36).slice(-4)}`;
  const warmUnit = `${prefix}-1-u1`;
  let startAt = 0;

  beforeAll(async () => {
    stack = await startStack({
      console: {
        // 1 s pings: a dead connection shows as lost within 2.5 s.
        heartbeatMs: 1000,
        refreshMs: 1000,
        sites: { [`${prefix}-1`]: { name: "徐汇店", timeZone: "Asia/Shanghai" } },
      },
    });
    // Two stores, six fridges each (more than a tablet's row). Fridge 1 of store 1 goes to 14 °C 100 minutes into the
    // two hours of history, which is beyond the action limit (12 °C) for longer than its delay.
    const fleet = await stack.addFleet({
      prefix,
      sites: 2,
      units: 6,
      probes: 2,
      historyMs: 2 * HOUR,
      excursions: [{ site: 0, unit: 0, afterMs: 100 * MIN, durationMs: 2 * HOUR, tempC: 14 }],
    });
    startAt = fleet.options.startAt;
    await fleet.advanceTo(startAt + 95 * MIN);
    await settled(stack);
    browser = await openBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const tile = (page: Page, unitId: string) => page.locator(`.tile[data-unit="${unitId}"]`);

  it("shows an excursion on the overview without reload, then it is acknowledged with a comment", async () => {
    const page = await browser.context.newPage();
    await signIn(page, stack, "en");
    await expect(tile(page, warmUnit).getAttribute("data-state")).resolves.toBe("ok");
    // Anything set on window survives only if the page is never reloaded.
    await page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });

    // The fleet goes on to now: the fridge warms up to 14 °C.
    await stack.fleets.get(prefix)?.advanceTo(Date.now());
    await tile(page, warmUnit).and(page.locator('[data-state="action"]')).waitFor();
    await expect(tile(page, warmUnit).locator(".badge").first().textContent()).resolves.toContain("Action");
    await expect(tile(page, warmUnit).locator(".temp-value").first().textContent()).resolves.toBe("14.0 °C");
    await tile(page, warmUnit)
      .getByText(/unacknowledged/)
      .waitFor();
    // Worst first: the warm fridge is the first tile.
    await expect(page.locator(".tile").first().getAttribute("data-unit")).resolves.toBe(warmUnit);
    await expect(
      page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded),
    ).resolves.toBe(true);

    // Acknowledge the action alarm in the inbox (client-side navigation, still no reload).
    await page.getByRole("link", { name: /Alarms/ }).click();
    const { body: open } = await stack.api<{ alarmId: string; unitId: string; tier?: string }[]>(
      "GET",
      `/alarms?unitId=${warmUnit}&state=raised`,
    );
    const action = open.find((a) => a.tier === "action");
    expect(action).toBeDefined();
    const row = page.locator(`.alarm-row[data-alarm="${action?.alarmId}"]`);
    await row.getByRole("button", { name: "Acknowledge…" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Acknowledged by").fill("Zhang Wei");
    await dialog.getByLabel("Action taken").selectOption("other");
    await dialog.getByLabel("Details of the action").fill("lot moved to fridge 2");
    await dialog.getByLabel("Comment").fill("door left open after the delivery");
    await dialog.getByRole("button", { name: "Acknowledge", exact: true }).click();
    await row.getByText("Acknowledged by Zhang Wei").waitFor();
    await expect(row.textContent()).resolves.toContain("door left open after the delivery");

    // The gateway's record (and its alarm.acknowledged event) has who, what and why.
    const { body: alarm } = await stack.api<{
      state: string;
      acknowledged: { by: string; comment: string; correctiveAction: string };
    }>("GET", `/alarms/${action?.alarmId}`);
    expect(alarm).toMatchObject({
      state: "acknowledged",
      acknowledged: {
        by: "Zhang Wei",
        comment: "door left open after the delivery",
        correctiveAction: "lot moved to fridge 2",
      },
    });
    await expect(
      page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded),
    ).resolves.toBe(true);
    await page.close();
  });

  it("shows Chinese on every page in zh-CN", async () => {
    await stack.api("PUT", "/lots/products", {
      sku: "REAG-CRP-100",
      name: "CRP reagent",
      storageClass: "2-8C",
      highC: null,
      budgetMinutes: { high: 30, low: null },
    });
    await stack.api("PUT", "/lots/lots", {
      lotId: "L-ZH-1",
      sku: "REAG-CRP-100",
      expiresAt: Date.now() + 90 * 24 * HOUR,
    });
    await stack.api("POST", "/lots/movements", {
      v: 1,
      movementId: `${prefix}-mv-1`,
      kind: "receive",
      siteId: `${prefix}-1`,
      occurredAt: startAt + 10 * MIN,
      lotId: "L-ZH-1",
      sku: "REAG-CRP-100",
      quantity: 5,
      toUnitId: `${prefix}-1-u2`,
      reference: "DN-1",
    });
    const page = await browser.context.newPage();
    await page.goto(`${stack.url}/console/sign-in`);
    await page.evaluate(() => localStorage.clear());
    await page.goto(`${stack.url}/console/sign-in`);
    await page.locator("select").first().selectOption("zh-CN");
    await expectChinese(page, "sign-in");
    await signIn(page, stack, "zh-CN");
    const pages: [string, string, string][] = [
      ["/console/", ".tile", "overview.title"],
      ["/console/inbox", ".alarm-row", "inbox.title"],
      [`/console/units/${warmUnit}`, ".u-over", ""],
      [`/console/lots?site=${prefix}-1`, "tr[data-lot]", "lots.title"],
      ["/console/lots/L-ZH-1", ".card", "lot.title"],
    ];
    for (const [path, ready, titleKey] of pages) {
      await page.goto(`${stack.url}${path}`);
      await page.locator(ready).first().waitFor();
      await expectChinese(page, path);
      if (titleKey) {
        const title = get(zhLeaves, titleKey)
          .replace(/\{\{[^}]+\}\}/, "")
          .trim();
        await expect(page.locator("h1").textContent()).resolves.toContain(title);
      }
    }
    await page.close();
  });

  async function expectChinese(page: Page, where: string) {
    await expect(
      page.evaluate(() => document.documentElement.lang),
      where,
    ).resolves.toBe("zh-CN");
    // What is rendered (innerText), not what the DOM holds: closed <details> do not count.
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is the point
    const text = await page.evaluate(() => document.body.innerText);
    expect(CJK.test(text), `${where} shows Chinese`).toBe(true);
    const leaked = englishOnly.filter((s) => text.includes(s));
    expect(leaked, `${where} shows English UI strings`).toEqual([]);
  }

  it("renders the overview on a 1024 × 768 tablet without horizontal scrolling", async () => {
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1024, height: 768 });
    await signIn(page, stack, "zh-CN");
    await page.locator(".tile").first().waitFor();
    const { scroll, client, widest } = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
      widest: Math.max(
        ...[...document.querySelectorAll(".tile, header, .summary")].map(
          (e) => e.getBoundingClientRect().right,
        ),
      ),
    }));
    expect(client).toBe(1024);
    expect(scroll).toBeLessThanOrEqual(client);
    expect(widest).toBeLessThanOrEqual(client);
    await page.close();
  });

  it("says when the connection is lost and comes back live by itself", async () => {
    const page = await browser.context.newPage();
    await signIn(page, stack, "en");
    const banner = page.getByRole("alert").filter({ hasText: "Connection to the gateway lost" });
    try {
      // The network goes (no reconnect can succeed), and the gateway's end of the stream closes.
      await page.context().setOffline(true);
      stack.gw.api?.server.closeAllConnections();
      await banner.waitFor({ timeout: 10_000 });
      await expect(page.locator(".connection").textContent()).resolves.toContain("Connection lost");
    } finally {
      await page.context().setOffline(false);
    }
    await page.locator(".conn-live").waitFor({ timeout: 20_000 });
    await expect(banner.count()).resolves.toBe(0);
    await page.close();
  });

  it("opens a unit from the overview with the keyboard alone", async () => {
    const page = await browser.context.newPage();
    await signIn(page, stack, "en");
    const first = page.locator(".tile-link").first();
    const unitId = await page.locator(".tile").first().getAttribute("data-unit");
    // Tab from the start of the page until the first tile has the focus.
    await until(
      async () => {
        await page.keyboard.press("Tab");
        return first.evaluate((el) => el === document.activeElement);
      },
      "focus on the first tile",
      10_000,
    );
    await page.keyboard.press("Enter");
    await page.waitForURL(new RegExp(`/console/units/${unitId}$`));
    await page.locator(".u-over").waitFor();
    await page.close();
  });

  it("refuses an unknown token on the sign-in page", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${stack.url}/console/sign-in`);
    await page.evaluate(() => localStorage.clear());
    await page.locator("select").first().selectOption("en");
    await page.locator('input[name="token"]').fill("ct_not-a-token");
    await page.locator('button[type="submit"]').click();
    await page.getByRole("alert").filter({ hasText: "The gateway does not know this token." }).waitFor();
    expect(page.url()).toMatch(/\/console\/sign-in$/);
    await page.close();
  });
});
