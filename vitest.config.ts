import { defineConfig } from "vitest/config"

// Workspace packages resolve to their TypeScript sources (the "@lossless/source"
// export condition), so tests run without a build. The rest are Vite's defaults.
const conditions = ["@lossless/source", "module", "node", "development|production"]

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["@lossless/source"] } },
  test: {
    include: [
      "packages/*/test/**/*.test.ts",
      "test/**/*.test.ts",
      "examples/**/*.test.ts",
      "benchmarks/test/**/*.test.ts",
      "docs/test/**/*.test.ts"
    ],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default", "./scripts/summary-reporter.ts"]
  }
})
