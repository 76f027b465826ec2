/**
 * The small pages behind a signed acknowledgement link, in the recipient's language: what the
 * alarm is, and a button (a form POST: mail scanners follow links, people press buttons).
 */
import type { Person, SitePolicy } from "./config.ts";
import type { EscalationRecord } from "./escalator.ts";
import { localTime, render } from "./messages.ts";

export interface PageText {
  title: string;
  text: string;
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

function page(lang: string, title: string, inner: string): string {
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5}button{font-size:1.2rem;padding:.6rem 1.4rem}textarea{width:100%}</style></head><body>${inner}</body></html>`;
}

export function resultPage(t: PageText): string {
  return page("en", t.title, `<h1>${esc(t.title)}</h1><p>${esc(t.text)}</p>`);
}

export function ackPage(p: {
  rec: EscalationRecord;
  person: Person;
  site: SitePolicy;
  now: number;
  done: boolean;
}): string {
  const zh = p.person.locale === "zh-CN";
  const { sms } = render({
    trigger: p.rec.trigger,
    site: p.site,
    locale: p.person.locale,
    kind: "alarm",
    tier: 1,
    round: 0,
    now: p.now,
  });
  const summary = sms.replace(/^【[^】]*】|^\[[^\]]*\]\s*/, "");
  if (p.done) {
    const a = p.rec.acknowledged;
    const by = a ? `${a.by} · ${localTime(a.at, p.site.timeZone, p.person.locale)}` : "";
    const title =
      p.rec.status === "cleared" && !a
        ? zh
          ? "告警已解除"
          : "Alarm cleared"
        : zh
          ? "告警已确认"
          : "Alarm acknowledged";
    return page(
      p.person.locale,
      title,
      `<h1>${esc(title)}</h1><p>${esc(summary)}</p>${by ? `<p>${zh ? "确认人" : "By"}: ${esc(by)}</p>` : ""}<p>${zh ? "提醒已停止。请按规程处置并记录纠正措施。" : "Reminders have stopped. Follow the SOP and record the corrective action."}</p>`,
    );
  }
  const title = zh ? "确认告警" : "Acknowledge alarm";
  return page(
    p.person.locale,
    title,
    `<h1>${esc(title)}</h1><p>${esc(summary)}</p><p>${esc(p.person.name)}</p><form method="post"><p><label>${zh ? "备注（可选）" : "Comment (optional)"}<br><textarea name="comment" rows="3" maxlength="1000"></textarea></label></p><p><button type="submit">${zh ? "我已知悉，立即处理" : "I am on it — acknowledge"}</button></p></form>`,
  );
}
