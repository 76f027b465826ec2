/**
 * Builds the console into dist/ (served by the gateway at /console/). Vite 8 bundles with
 * Rolldown and transforms TSX with Oxc, both shipped as prebuilt binaries inside their npm
 * packages: no install script runs (esbuild's stays denied, docs/development.md).
 */
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  // Preact's JSX runtime, without a framework plugin (no dev-server HMR needed for a build).
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // One small app: a single chunk keeps the first load to two requests.
    chunkSizeWarningLimit: 200,
    reportCompressedSize: false,
  },
  logLevel: "warn",
});
