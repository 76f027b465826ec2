/**
 * Serves the built console (dashboards/console → dist/) at /console/ with @fastify/static,
 * outside /api/v1 and without a token: the page itself asks for one (stage 1) and sends it
 * with every API call. `/` redirects to /console/.
 *
 *   /console/assets/…   content-hashed files: cached for a year (immutable)
 *   /console/…          index.html for any other path (the console routes in the browser)
 *
 * Nothing is fetched from elsewhere (a store's network may have no internet): the Content
 * Security Policy allows this origin only.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyPluginAsync, FastifyReply } from "fastify";
import type { Logger } from "pino";

export const CONSOLE_PATH = "/console/";

const CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "style-src 'self'",
  "script-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

const NOT_BUILT = (dir: string) => `<!doctype html><meta charset="utf-8"><title>Coldtrace console</title>
<h1>The console is not built</h1>
<p>No <code>index.html</code> in <code>${dir}</code>. Run <code>npm ci</code> (it builds the console) or
<code>npm run build -w @coldtrace/console</code>, then restart the gateway.</p>
<p>控制台尚未构建：请运行 <code>npm ci</code> 或 <code>npm run build -w @coldtrace/console</code>，然后重启网关。</p>`;

/** Where the console's build is: the @coldtrace/console workspace's dist/, unless configured. */
export function defaultAssetsDir(): string | undefined {
  try {
    const pkg = import.meta.resolve("@coldtrace/console/package.json");
    return path.join(path.dirname(new URL(pkg).pathname), "dist");
  } catch {
    return undefined;
  }
}

export function consoleSite(opts: { assetsDir: string | undefined; log: Logger }): FastifyPluginAsync {
  return async (app) => {
    const dir = opts.assetsDir;
    const built = dir !== undefined && existsSync(path.join(dir, "index.html"));

    app.get("/", { schema: { hide: true } }, async (_req, reply) => reply.redirect(CONSOLE_PATH));

    // Its own prefix, so the not-found handler below is the console's, not the whole API's.
    await app.register(
      async (site) => {
        site.addHook("onSend", async (_req, reply) => {
          reply.header("content-security-policy", CSP);
          reply.header("x-content-type-options", "nosniff");
          reply.header("referrer-policy", "no-referrer");
        });
        if (!built) {
          opts.log.warn({ assetsDir: dir ?? null }, "console assets not built; /console/ explains how");
          site.get("/*", { schema: { hide: true } }, async (_req, reply) =>
            reply
              .code(503)
              .type("text/html; charset=utf-8")
              .send(NOT_BUILT(dir ?? "(not found)")),
          );
          return;
        }
        await site.register(fastifyStatic, {
          root: dir,
          prefix: "/",
          schemaHide: true,
          index: false,
          cacheControl: false,
          setHeaders(reply, file) {
            const hashed = file.includes(`${path.sep}assets${path.sep}`);
            reply.header("cache-control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
          },
        });
        const page = async (_req: unknown, reply: FastifyReply) => {
          reply.header("cache-control", "no-cache");
          return reply.sendFile("index.html");
        };
        // With the prefix, "/" is both /console and /console/; the console's pages live under the latter.
        site.get("/", { schema: { hide: true } }, async (req, reply) =>
          req.url.split("?")[0] === "/console" ? reply.redirect(CONSOLE_PATH) : page(req, reply),
        );
        // Any path that is not a file is a page of the console: the browser routes it.
        site.setNotFoundHandler(async (req, reply) => {
          const url = req.url.split("?")[0] ?? "";
          // Missing files under assets/ are 404s; any other path is a page (a lot id may hold a dot).
          if (
            req.method !== "GET" ||
            !url.startsWith(CONSOLE_PATH) ||
            url.startsWith(`${CONSOLE_PATH}assets/`)
          ) {
            return reply.code(404).send({ statusCode: 404, error: "Not Found", message: `${url} not found` });
          }
          return page(req, reply);
        });
      },
      { prefix: "/console" },
    );
  };
}
