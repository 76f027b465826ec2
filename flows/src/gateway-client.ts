/**
 * The gateway's REST API as the flows use it (docs/integrator/api.md): bearer token, JSON,
 * answers kept as status + body so callers can tell "the gateway refused this" (4xx, do not
 * retry as is) from "the gateway is not there" (network error, 5xx: retry later).
 */

export interface GatewayAnswer<T = unknown> {
  status: number;
  body: T;
}

export class GatewayUnavailable extends Error {}

export class GatewayClient {
  readonly url: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(opts: { url: string; token: string; timeoutMs?: number }) {
    this.url = opts.url.replace(/\/+$/, "");
    this.#token = opts.token;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** One call. Throws GatewayUnavailable when there is no answer, or a 5xx one. */
  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    opts: { contentType?: string; raw?: Uint8Array } = {},
  ): Promise<GatewayAnswer<T>> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(opts.raw
            ? { "content-type": opts.contentType ?? "application/octet-stream" }
            : body === undefined
              ? {}
              : { "content-type": "application/json" }),
        },
        ...(opts.raw ? { body: opts.raw } : body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      throw new GatewayUnavailable(`gateway ${this.url}: ${e.cause?.code ?? e.message}`);
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === "" ? null : JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    if (res.status >= 500) {
      throw new GatewayUnavailable(
        `gateway ${this.url}${path} answered ${res.status}: ${text.slice(0, 200)}`,
      );
    }
    return { status: res.status, body: parsed as T };
  }

  /** The gateway's message for a refused request ({ message } or the body). */
  static reason(a: GatewayAnswer): string {
    const b = a.body as { message?: unknown } | null;
    return typeof b?.message === "string" ? b.message : JSON.stringify(a.body);
  }
}
