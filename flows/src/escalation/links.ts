/**
 * Acknowledging from the message itself: a signed link (e-mail, webhook, SMS) and a reply code
 * (SMS). The link names the escalation and the person it was sent to, and expires; it is an
 * HMAC-SHA256 over those, keyed by COLDTRACE_ESCALATION_LINK_SECRET, so nobody can forge an
 * acknowledgement for someone else or for another alarm.
 *
 *   https://…/escalation/ack/<payload>.<signature>     payload = base64url(JSON {k, p, e})
 *
 * Opening the link shows the alarm and a button (GET never acknowledges: mail scanners fetch
 * links); the button POSTs the acknowledgement.
 */
import { createHmac, randomInt, timingSafeEqual } from "node:crypto";

export interface AckClaim {
  /** Escalation key (the alarm id, or the agent-offline key). */
  key: string;
  /** Person id the message went to. */
  personId: string;
  /** Expiry, epoch ms. */
  expiresAt: number;
}

function sign(secret: string, payload: string): string {
  return createHmac("sha256", secret).update(payload).digest("base64url");
}

export function ackToken(secret: string, claim: AckClaim): string {
  const payload = Buffer.from(
    JSON.stringify({ k: claim.key, p: claim.personId, e: claim.expiresAt }),
  ).toString("base64url");
  return `${payload}.${sign(secret, payload)}`;
}

export type TokenCheck =
  | { ok: true; claim: AckClaim }
  | { ok: false; reason: "malformed" | "signature" | "expired" };

export function verifyAckToken(secret: string, token: string, now: number): TokenCheck {
  const [payload, sig, extra] = token.split(".");
  if (!payload || !sig || extra !== undefined) return { ok: false, reason: "malformed" };
  const expected = Buffer.from(sign(secret, payload));
  const given = Buffer.from(sig);
  if (expected.length !== given.length || !timingSafeEqual(expected, given))
    return { ok: false, reason: "signature" };
  let body: { k?: unknown; p?: unknown; e?: unknown };
  try {
    body = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return { ok: false, reason: "malformed" };
  }
  if (typeof body.k !== "string" || typeof body.p !== "string" || typeof body.e !== "number") {
    return { ok: false, reason: "malformed" };
  }
  if (body.e <= now) return { ok: false, reason: "expired" };
  return { ok: true, claim: { key: body.k, personId: body.p, expiresAt: body.e } };
}

/** A 4-digit reply code not used by another open escalation. */
export function newReplyCode(inUse: ReadonlySet<string>): string {
  for (;;) {
    const code = String(randomInt(1000, 10_000));
    if (!inUse.has(code)) return code;
  }
}

/**
 * The code in an SMS reply: "1234", "确认 1234", "ACK 1234", "ok1234". Returns undefined when
 * the text holds no 4-digit number, or more than one.
 */
export function replyCodeIn(text: string): string | undefined {
  const codes = text.match(/(?<!\d)\d{4}(?!\d)/g) ?? [];
  return codes.length === 1 ? codes[0] : undefined;
}
