/**
 * A small, realistic store network for the screenshots (and a look by hand): three stores with
 * fridges, one fridge in an action-level excursion now, one that warmed up to the alert tier
 * this morning, a lot received into the warm fridge and quarantined, a store whose readings
 * stopped an hour and a half ago (gap) and one whose agent went offline.
 */
import type { Movement } from "@coldtrace/protocol";
import { MIN, type Stack, settled, startStack } from "./harness.ts";

const HOUR = 60 * MIN;

export const SITES = {
  "xh-1": { name: "徐汇店", timeZone: "Asia/Shanghai" },
  "xh-2": { name: "静安店", timeZone: "Asia/Shanghai" },
  "xh-3": { name: "浦东店", timeZone: "Asia/Shanghai" },
  "gap-1": { name: "闵行店", timeZone: "Asia/Shanghai" },
  "off-1": { name: "嘉定店", timeZone: "Asia/Shanghai" },
};

export const LOT = "L2026-0412";

export async function storeNetwork(): Promise<{ stack: Stack; actionUnit: string; alertUnit: string }> {
  const stack = await startStack({ console: { sites: SITES, defaultTimeZone: "Asia/Shanghai" } });
  const history = 24 * HOUR;
  const main = await stack.addFleet({
    prefix: "xh",
    sites: 3,
    units: 4,
    probes: 2,
    historyMs: history,
    excursions: [
      // xh-1-u1: 14 °C for the last 40 minutes, still going: action tier.
      { site: 0, unit: 0, afterMs: history - 40 * MIN, durationMs: 4 * HOUR, tempC: 14 },
      // xh-1-u2: 9.5 °C for 50 minutes this morning: alert tier, over.
      { site: 0, unit: 1, afterMs: history - 6 * HOUR, durationMs: 50 * MIN, tempC: 9.5 },
      // xh-2-u3: a short action excursion yesterday evening.
      { site: 1, unit: 2, afterMs: history - 14 * HOUR, durationMs: 25 * MIN, tempC: 13 },
    ],
  });
  const gap = await stack.addFleet({ prefix: "gap", sites: 1, units: 2, probes: 2, historyMs: 4 * HOUR });
  const off = await stack.addFleet({ prefix: "off", sites: 1, units: 1, probes: 1, historyMs: 2 * HOUR });

  // A lot of reagent received into the fridge that is about to warm up.
  const actionUnit = "xh-1-u1";
  await stack.api("PUT", "/lots/products", {
    sku: "REAG-CRP-100",
    name: "CRP reagent 100 tests",
    storageClass: "2-8C",
    highC: null,
    budgetMinutes: { high: 30, low: null },
  });
  await stack.api("PUT", "/lots/lots", {
    lotId: LOT,
    sku: "REAG-CRP-100",
    expiresAt: Date.now() + 180 * 24 * HOUR,
  });
  const movement: Movement = {
    v: 1,
    movementId: "xh-1-DN-0412-1",
    kind: "receive",
    siteId: "xh-1",
    occurredAt: main.options.startAt + HOUR,
    lotId: LOT,
    sku: "REAG-CRP-100",
    quantity: 12,
    toUnitId: actionUnit,
    reference: "DN-0412",
  };
  // The contract movement, as the ERP bridge sends it (here over REST instead of MQTT).
  await stack.api("POST", "/lots/movements", movement);

  const now = Date.now();
  await main.advanceTo(now);
  await gap.advanceTo(now - 90 * MIN);
  await off.advanceTo(now);
  await settled(stack);
  await off.stop();
  stack.fleets.delete("off");
  // The store manager has already acknowledged the alert-tier alarm of the warm fridge.
  const { body: raised } = await stack.api<{ alarmId: string; tier?: string }[]>(
    "GET",
    `/alarms?unitId=${actionUnit}&state=raised`,
  );
  const alert = raised.find((a) => a.tier === "alert");
  if (alert) {
    await stack.api("POST", `/alarms/${alert.alarmId}/acknowledge`, {
      by: "张伟（店长）",
      comment: "送货后柜门未关严。",
      correctiveAction: "已关好门，产品转移至 xh-1-u3",
    });
  }
  return { stack, actionUnit, alertUnit: "xh-1-u2" };
}
