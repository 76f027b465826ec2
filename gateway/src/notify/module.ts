/**
 * The notify module inside the gateway: the records of who was told about each alarm, as the
 * escalation flow (flows/escalation) reports them, kept on the records database and shown in the
 * alarm's timeline (routes.ts). The flow does the telling; the gateway keeps the account of it.
 *
 *   Node-RED coldtrace-report ─POST /api/v1/alarms/{id}/notifications─▶ alarm_notifications
 *   console, excursion report  ◀─GET  /api/v1/alarms/{id}/notifications | /timeline──┘
 */
import type { Extension, ExtensionFactory } from "../extension/extension.ts";
import { notifyRoutes } from "./routes.ts";
import { createNotificationStore, type NotificationStore } from "./store.ts";

export interface NotifyExtension extends Extension {
  readonly store: NotificationStore | undefined;
}

export function notifyExtension(): ExtensionFactory {
  return (ctx): NotifyExtension => {
    const log = ctx.log.child({ component: "notify" });
    let store: NotificationStore | undefined;
    const routes = notifyRoutes({ store: () => store, records: ctx.records, clock: ctx.clock });
    return {
      name: "notify",
      get store() {
        return store;
      },
      async start() {
        store = await createNotificationStore(ctx.sql);
        log.info({ backend: ctx.sql.kind }, "notify module started");
      },
      routes,
    };
  };
}
