/**
 * Notify: the gateway's record of every alarm notification (sent, retried, failed) and
 * acknowledgement the escalation flow reports, per alarm, in its timeline. See flows/README.md.
 */
export { type NotifyExtension, notifyExtension } from "./module.ts";
export { notifyRoutes, timeline } from "./routes.ts";
export {
  createNotificationStore,
  type NotificationRecord,
  type NotificationStatus,
  type NotificationStore,
  notificationStatus,
  type StoredNotification,
} from "./store.ts";
