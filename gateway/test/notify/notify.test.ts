/**
 * The notify module in a running gateway, on SQLite and on PostgreSQL: records of the escalation
 * flow posted over the REST API, kept once by id, refused with the field named when bad, listed
 * per alarm in order, and merged into the alarm's timeline. (The whole chain from a real alarm
 * through Node-RED to this API is flows/test/escalation.test.ts.)
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { freshPgSchema, type PgSchema, requireService } from "@coldtrace/testkit";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../src/api/auth.ts";
import { type GatewayRuntime, startGateway } from "../../src/app/gateway.ts";
import { builtinExtensions } from "../../src/cli/builtins.ts";
import { parseGatewayConfig } from "../../src/config/load.ts";
import { timeline } from "../../src/notify/routes.ts";
import type { NotificationRecord, StoredNotification } from "../../src/notify/store.ts";
import type { AlarmRecord } from "../../src/storage/types.ts";

const T0 = Date.UTC(2026, 10, 23, 19, 0, 0);
const pg = await requireService("postgres");

function rec(
  p: Partial<NotificationRecord> & Pick<NotificationRecord, "recordId" | "status" | "at">,
): NotificationRecord {
  return {
    alarmId: "store-12-fridge-2.temp.h.action.abc",
    notificationId: p.recordId.split("#")[0]!,
    siteId: "store-12",
    unitId: "fridge-2",
    kind: "alarm",
    tier: 1,
    round: 0,
    channel: "sms",
    recipient: "night.wang",
    recipientName: "王丽",
    address: "+86138****0001",
    attempt: 1,
    ...p,
  };
}

function suite(name: string, storage: () => Promise<{ storage: object; cleanup(): Promise<void> }>) {
  describe(`notify over the API: ${name}`, () => {
    let gw: GatewayRuntime;
    let dir: string;
    let token: string;
    let cleanup: () => Promise<void>;
    const call = async (method: string, url: string, body?: unknown) => {
      const res = await fetch(`${gw.apiUrl}/api/v1${url}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as never };
    };

    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), "ct-notify-"));
      const s = await storage();
      cleanup = s.cleanup;
      const t = generateToken();
      token = t.token;
      const config = parseGatewayConfig(
        {
          broker: { host: "127.0.0.1", port: 0 },
          api: { host: "127.0.0.1", port: 0, tokens: [{ name: "node-red", hash: t.hash }] },
          storage: s.storage,
        },
        "notify-test",
        dir,
      );
      gw = await startGateway({
        config,
        extensions: builtinExtensions(config),
        log: pino({ level: "silent" }),
      });
    });
    afterAll(async () => {
      await gw?.stop();
      await cleanup?.();
      await rm(dir, { recursive: true, force: true });
    });

    it("keeps each record once, lists an alarm's records in order, and refuses bad or conflicting ones by field", async () => {
      const id = "store-12-fridge-2.temp.h.action.abc";
      const retried = rec({
        recordId: `${id}.t1.r0.night.wang.sms#1`,
        status: "retried",
        at: T0,
        error: "sms.test answered 503",
      });
      const sent = rec({
        recordId: `${id}.t1.r0.night.wang.sms#2`,
        status: "sent",
        attempt: 2,
        at: T0 + 10_000,
        providerId: "msg-7",
      });
      const mail = rec({
        recordId: `${id}.t1.r0.night.wang.email#1`,
        status: "sent",
        channel: "email",
        address: "wang.li@store.test",
        at: T0 + 1000,
      });
      for (const r of [sent, retried, mail])
        expect((await call("POST", `/alarms/${id}/notifications`, r)).status).toBe(201);
      // The flow retries a report until it has an answer: the same record again is one row.
      expect((await call("POST", `/alarms/${id}/notifications`, sent)).status).toBe(200);
      expect((await call("POST", `/alarms/${id}/notifications`, { ...sent, status: "failed" })).status).toBe(
        409,
      );

      const list = await call("GET", `/alarms/${id}/notifications`);
      expect(list.status).toBe(200);
      expect(
        (list.body as Array<StoredNotification & { atIso: string }>).map((n) => [
          n.recordId.split(".").slice(-2).join("."),
          n.status,
          n.atIso,
        ]),
      ).toEqual([
        ["wang.sms#1", "retried", "2026-11-23T19:00:00.000Z"],
        ["wang.email#1", "sent", "2026-11-23T19:00:01.000Z"],
        ["wang.sms#2", "sent", "2026-11-23T19:00:10.000Z"],
      ]);
      expect((list.body as StoredNotification[])[2]).toMatchObject({
        providerId: "msg-7",
        recipientName: "王丽",
        receivedAt: expect.any(Number),
      });

      const bad = await call("POST", `/alarms/${id}/notifications`, {
        ...sent,
        recordId: "x#1",
        status: "delivered",
        tier: "one",
      });
      expect(bad.status).toBe(400);
      expect((bad.body as { message: string }).message).toMatch(
        /body\.status.*body\.tier|body\.tier.*body\.status/,
      );
      const other = await call("POST", `/alarms/other-alarm/notifications`, { ...sent, recordId: "y#1" });
      expect(other.status).toBe(400);
      expect((other.body as { message: string }).message).toContain("body.alarmId");

      // No gateway alarm (an agent's last will): the timeline is the notifications alone.
      const tl = await call("GET", `/alarms/${id}/timeline`);
      expect(tl.status).toBe(200);
      expect(
        (tl.body as { entries: Array<{ what: string; summary: string }> }).entries.map((e) => e.summary),
      ).toEqual([
        "tier 1: sms to 王丽 (night.wang) at +86138****0001 failed (attempt 1, will retry): sms.test answered 503",
        "tier 1: email to 王丽 (night.wang) at wang.li@store.test sent",
        "tier 1: sms to 王丽 (night.wang) at +86138****0001 sent",
      ]);
      expect((await call("GET", "/alarms/never-heard-of/timeline")).status).toBe(404);
      expect((await fetch(`${gw.apiUrl}/api/v1/alarms/${id}/notifications`)).status).toBe(401);
    });

    it("shows the routes in /openapi.json", async () => {
      const doc = (await (await fetch(`${gw.apiUrl}/openapi.json`)).json()) as {
        paths: Record<string, object>;
      };
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining([
          "/api/v1/alarms/{alarmId}/notifications",
          "/api/v1/alarms/{alarmId}/timeline",
        ]),
      );
    });
  });
}

suite("sqlite", async () => ({
  storage: { records: { backend: "sqlite", path: "ct.db" }, readings: { backend: "sqlite" } },
  cleanup: async () => {},
}));

describe.skipIf(!pg.available)(`postgres ${pg.reason}`, () => {
  let schema: PgSchema | undefined;
  suite("postgres", async () => {
    schema = await freshPgSchema("ct_notify");
    return {
      storage: {
        records: { backend: "postgres", url: schema.connectionString },
        readings: { backend: "postgres" },
      },
      cleanup: async () => schema?.drop(),
    };
  });
});

describe("an alarm's timeline", () => {
  it("puts raised, every notification, acknowledged and cleared in the order they happened", () => {
    const alarm: AlarmRecord = {
      siteId: "store-12",
      alarmId: "a-1",
      kind: "temperature",
      unitId: "fridge-2",
      tier: "action",
      side: "high",
      raisedAt: T0,
      message: "fridge-2: temperature above the action limit 12 °C for 5 min or more",
      acknowledged: { by: "night.wang", comment: "door closed", correctiveAction: "" },
      clearedAt: T0 + 40 * 60_000,
      state: "cleared",
      updatedAt: T0 + 40 * 60_000,
    };
    const n = (
      p: Partial<StoredNotification> & Pick<NotificationRecord, "recordId" | "status" | "at">,
    ): StoredNotification => ({
      ...rec({ ...p, alarmId: "a-1" }),
      receivedAt: p.at,
    });
    const entries = timeline(alarm, [
      n({ recordId: "a-1.clear.night.wang.sms#1", kind: "all_clear", status: "sent", at: T0 + 41 * 60_000 }),
      n({
        recordId: "a-1.t2.r0.sup.wu.sms#1",
        tier: 2,
        recipient: "sup.wu",
        recipientName: "吴强",
        status: "failed",
        attempt: 3,
        error: "no answer",
        at: T0 + 15 * 60_000,
      }),
      n({ recordId: "a-1.t1.r0.night.wang.sms#1", status: "sent", at: T0 }),
      n({
        recordId: "a-1.ack.night.wang",
        kind: "acknowledgement",
        channel: "link",
        address: "",
        status: "acknowledged",
        at: T0 + 20 * 60_000,
      }),
    ]);
    expect(entries.map((e) => `${e.atIso.slice(11, 16)} ${e.what}: ${e.summary}`)).toEqual([
      "19:00 raised: fridge-2: temperature above the action limit 12 °C for 5 min or more",
      "19:00 notification: tier 1: sms to 王丽 (night.wang) at +86138****0001 sent",
      "19:15 notification: tier 2: sms to 吴强 (sup.wu) at +86138****0001 FAILED after 3 attempts: no answer",
      "19:20 notification: acknowledged by 王丽 (night.wang) via link",
      "19:20 acknowledged: acknowledged by night.wang: door closed",
      "19:40 cleared: alarm cleared",
      "19:41 notification: all clear: sms to 王丽 (night.wang) at +86138****0001 sent",
    ]);
  });
});
