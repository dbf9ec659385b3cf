// End-to-end tests against real VMs (test/e2e): slow, one file at a time, a Temporal dev server
// for the run (globalSetup, same helper as the workflow tests).
//   npx vitest run --config vitest.e2e.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    fileParallelism: false,
    include: ['test/e2e/**/*.test.ts'],
    testTimeout: 40 * 60_000,
    hookTimeout: 40 * 60_000,
    teardownTimeout: 60_000,
    globalSetup: ['test/helpers/temporal.ts'],
  },
});
