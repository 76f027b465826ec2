/**
 * Screenshots of every console page in zh-CN and en, into docs/console/, taken with Debian's
 * Chromium against a running gateway and simulated stores (test/console/scenario.ts).
 *
 *   npm run screenshots -w @coldtrace/dashboards
 *
 * Pages: sign-in, overview (desktop and 1024×768 tablet), alarm inbox, acknowledge dialog,
 * unit (24-hour chart with an excursion), lots, lot.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { openBrowser, signIn } from "../test/console/harness.ts";
import { LOT, storeNetwork } from "../test/console/scenario.ts";

const out = fileURLToPath(new URL("../../docs/console/", import.meta.url));
await mkdir(out, { recursive: true });

const { stack, actionUnit } = await storeNetwork();
const browser = await openBrowser();
const shot = async (page: Page, name: string, fullPage = true) => {
  await page.evaluate(() => document.fonts.ready);
  const file = path.join(out, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  process.stdout.write(`  ${path.relative(process.cwd(), file)}\n`);
};
try {
  for (const lang of ["zh-CN", "en"] as const) {
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.goto(`${stack.url}/console/sign-in`);
    await page.locator("select").first().selectOption(lang);
    await shot(page, `sign-in.${lang}`, false);
    await signIn(page, stack, lang);
    await page.locator(".tile").first().waitFor();
    await shot(page, `overview.${lang}`);
    await page.setViewportSize({ width: 1024, height: 768 });
    await shot(page, `overview-tablet.${lang}`, false);
    await page.setViewportSize({ width: 1280, height: 860 });

    await page.locator('a[href="/console/inbox"]').click();
    await page.locator(".alarm-row").first().waitFor();
    await shot(page, `inbox.${lang}`);
    await page.locator(".alarm-row.unacked button.primary").first().click();
    await page.locator("dialog[open]").waitFor();
    await page
      .locator('dialog input[name="by"]')
      .fill(lang === "en" ? "Zhang Wei (store manager)" : "张伟（店长）");
    await page.locator('dialog select[name="action"]').selectOption("door_closed");
    await page
      .locator('dialog textarea[name="comment"]')
      .fill(lang === "en" ? "Door was left ajar after the delivery." : "送货后柜门未关严。");
    await shot(page, `acknowledge.${lang}`, false);
    await page.keyboard.press("Escape");

    await page.goto(`${stack.url}/console/units/${actionUnit}`);
    await page.locator(".u-over").waitFor();
    await page.locator(".chart-res").filter({ hasNotText: "…" }).waitFor();
    await shot(page, `unit.${lang}`);

    await page.goto(`${stack.url}/console/lots?site=xh-1`);
    await page.locator("tr[data-lot]").first().waitFor();
    await shot(page, `lots.${lang}`);
    await page.goto(`${stack.url}/console/lots/${LOT}`);
    await page.locator(".card").first().waitFor();
    await shot(page, `lot.${lang}`);
    await page.close();
  }
} finally {
  await browser.close();
  await stack.stop();
}
