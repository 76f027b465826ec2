/**
 * The flows' peers in tests, over real sockets on 127.0.0.1: an HTTP peer that records every
 * request and answers as told (the SMS gateway, a webhook receiver, the ERP), and a real SMTP
 * server (smtp-server) whose mails are parsed by mailparser. Waiting is on events, never on
 * sleeps; the timeout only turns a hang into a failure naming what was awaited.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";

/** A list that can be awaited for an element matching a predicate. */
export class Recorder<T> {
  readonly items: T[] = [];
  readonly #waiters: Array<{ pred: (t: T) => boolean; resolve: (t: T) => void }> = [];

  push(item: T): void {
    this.items.push(item);
    for (const w of this.#waiters.splice(0)) {
      if (w.pred(item)) w.resolve(item);
      else this.#waiters.push(w);
    }
  }

  waitFor(pred: (t: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
    const seen = this.items.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      this.#waiters.push({
        pred,
        resolve: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
      });
    });
  }

  /** Wait until `n` items match. */
  async waitForCount(pred: (t: T) => boolean, n: number, what: string, timeoutMs = 30_000): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.items.filter(pred);
      if (found.length >= n) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} × ${what} (have ${found.length})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push({
          pred,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    }
  }

  filter(pred: (t: T) => boolean): T[] {
    return this.items.filter(pred);
  }
}

export interface PeerRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  text: string;
  /** The status this peer answered. */
  status: number;
}

export interface HttpPeer {
  url: string;
  requests: Recorder<PeerRequest>;
  /** Decide the answer per request (default 200 `{ id }`). */
  respond: (req: Omit<PeerRequest, "status">) => { status: number; body?: unknown };
  close(): Promise<void>;
}

export async function startHttpPeer(): Promise<HttpPeer> {
  let n = 0;
  const peer: HttpPeer = {
    url: "",
    requests: new Recorder<PeerRequest>(),
    respond: () => ({ status: 200, body: { id: `msg-${++n}` } }),
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON
      }
      const r = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body, text };
      const answer = peer.respond(r);
      res.writeHead(answer.status, { "content-type": "application/json" });
      res.end(JSON.stringify(answer.body ?? {}));
      peer.requests.push({ ...r, status: answer.status });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  peer.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  peer.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return peer;
}

export interface SmtpPeer {
  url: string;
  mails: Recorder<ParsedMail>;
  close(): Promise<void>;
}

/** A real SMTP server (no TLS, no auth: loopback only). */
export async function startSmtpPeer(): Promise<SmtpPeer> {
  const mails = new Recorder<ParsedMail>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((mail) => {
          mails.push(mail);
          callback();
        })
        .catch((err: Error) => callback(err));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
