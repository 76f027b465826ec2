import { defineConfig } from "vitest/config";

// One runner for the whole monorepo: every workspace's test/ folder is a project.
export default defineConfig({
  test: {
    projects: [
      "protocol",
      "testkit",
      "edge-agent",
      "gateway",
      "simulators",
      "flows",
      "dashboards",
      "deploy",
      "docs",
    ].map((name) => ({
      extends: true,
      test: { name, root: name, include: ["test/**/*.test.ts"] },
    })),
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default", "./scripts/summary-reporter.ts"],
    passWithNoTests: true,
  },
});
