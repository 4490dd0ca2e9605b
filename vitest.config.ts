import { defineConfig } from "vitest/config";

/**
 * Two projects: the product's tests (`npm test`: test/) and the benchmarks' own tests (`npm run test:bench`:
 * benchmarks/test/), which keep the benchmark code working and check its estimator maths but say nothing about the
 * pipeline, and take minutes of both cores.
 */
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "product", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "bench", include: ["benchmarks/test/**/*.test.ts"] } },
    ],
  },
});
