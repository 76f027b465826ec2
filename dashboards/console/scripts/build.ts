/**
 * `npm ci` builds the console (this package's `prepare`), so a fresh clone serves it at once.
 * An install without dev dependencies (`npm ci --omit=dev`, e.g. a production image) has no
 * Vite: then this says so and skips, and the gateway's /console/ page explains how to build.
 */
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
let vite: typeof import("vite");
try {
  vite = await import("vite");
} catch {
  process.stderr.write(
    "@coldtrace/console: vite is not installed (an install without dev dependencies); console not built.\n" +
      "  Build it where dev dependencies are installed: npm run build -w @coldtrace/console\n",
  );
  process.exit(0);
}
await vite.build({ root, configFile: `${root}vite.config.ts`, logLevel: "warn" });
