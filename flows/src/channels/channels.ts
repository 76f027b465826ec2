/**
 * The three ways a message leaves: SMS through an HTTP SMS gateway, e-mail over SMTP
 * (nodemailer), and a webhook (WeCom/DingTalk robots, a paging service, a chat bridge).
 * Each send either resolves with the provider's id or throws an error whose message says what
 * the peer answered; retrying is the caller's business.
 *
 * SMS gateway contract (adapt a provider to it with a small relay if it differs):
 *   POST <COLDTRACE_SMS_URL>   Authorization: Bearer <COLDTRACE_SMS_TOKEN>   content-type: application/json
 *   { "to": "+8613800138000", "text": "…", "reference": "<notificationId>" }
 *   2xx → sent; the answer's JSON `id` (if any) is kept as the provider's message id.
 */
import nodemailer, { type Transporter } from "nodemailer";
import type { Dispatch } from "../escalation/escalator.ts";

export interface ChannelSettings {
  sms?: { url: string; token?: string };
  smtp?: { url: string; from: string };
  timeoutMs: number;
}

export interface SendResult {
  providerId?: string;
}

async function postJson(url: string, body: unknown, headers: Record<string, string>, timeoutMs: number) {
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    throw new Error(
      `${new URL(url).host}: ${e.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message)}`,
    );
  }
  const text = await res.text();
  if (!res.ok)
    throw new Error(`${new URL(url).host} answered ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}`);
  try {
    return JSON.parse(text) as { id?: unknown };
  } catch {
    return {};
  }
}

export class Channels {
  readonly #settings: ChannelSettings;
  #mail: Transporter | undefined;

  constructor(settings: ChannelSettings) {
    this.#settings = settings;
    if (settings.smtp) this.#mail = nodemailer.createTransport(settings.smtp.url);
  }

  /** Channels that are configured (a dispatch on another one fails at once, with a reason). */
  get available(): string[] {
    return [...(this.#settings.sms ? ["sms"] : []), ...(this.#settings.smtp ? ["email"] : []), "webhook"];
  }

  async send(d: Dispatch): Promise<SendResult> {
    switch (d.channel) {
      case "sms": {
        const sms = this.#settings.sms;
        if (!sms) throw new Error("no SMS gateway configured (COLDTRACE_SMS_URL)");
        const r = await postJson(
          sms.url,
          { to: d.address, text: d.sms, reference: d.notificationId },
          sms.token ? { authorization: `Bearer ${sms.token}` } : {},
          this.#settings.timeoutMs,
        );
        return typeof r.id === "string" || typeof r.id === "number" ? { providerId: String(r.id) } : {};
      }
      case "email": {
        const smtp = this.#settings.smtp;
        if (!smtp || !this.#mail) throw new Error("no SMTP server configured (COLDTRACE_SMTP_URL)");
        const info = await this.#mail.sendMail({
          from: smtp.from,
          to: { name: d.personName, address: d.address },
          subject: d.subject,
          text: d.ackUrl ? `${d.body}\n\n${d.ackUrl}\n` : d.body,
          headers: { "X-Coldtrace-Notification": d.notificationId },
        });
        return { providerId: info.messageId };
      }
      case "webhook": {
        const r = await postJson(
          d.address,
          {
            type: d.kind === "alarm" ? "coldtrace.alarm" : "coldtrace.all_clear",
            notificationId: d.notificationId,
            alarmId: d.key,
            siteId: d.siteId,
            unitId: d.unitId ?? null,
            alarmKind: d.alarmKind,
            tier: d.tier,
            round: d.round,
            locale: d.locale,
            text: d.sms,
            ackUrl: d.ackUrl ?? null,
            at: new Date(d.at).toISOString(),
          },
          {},
          this.#settings.timeoutMs,
        );
        return typeof r.id === "string" ? { providerId: r.id } : {};
      }
    }
  }

  close(): void {
    this.#mail?.close();
  }
}

/** +8613800138000 → +86138****8000: enough for a record, less for a leaked log. */
export function maskAddress(channel: string, address: string): string {
  if (channel === "sms" && address.length > 8) return `${address.slice(0, -8)}****${address.slice(-4)}`;
  if (channel === "webhook") {
    try {
      return new URL(address).host;
    } catch {
      return "webhook";
    }
  }
  return address;
}
