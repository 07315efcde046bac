import { defineConfig } from "vitest/config";

// One root config runs every package's tests straight from sources: the
// "source" export condition points each workspace package at its src/.
export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"], externalConditions: ["source"] } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts", "tooling/*/test/**/*.test.ts", "test-images/test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: "forks",
    reporters: ["default", "./tooling/vitest/plain-summary.ts"],
  },
});
