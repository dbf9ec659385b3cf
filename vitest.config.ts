// Default test run: unit, ssh and workflow tests; the e2e tests (real VMs) have their own
// config, vitest.e2e.config.ts. Files run one at a time in forked processes: the workflow tests
// share one Temporal dev server, the ssh tests spawn sshd.
//
// Two projects so that only the workflow tests pay for the Temporal dev server (globalSetup):
//   npx vitest run                       everything
//   npx vitest run test/workflow         workflow tests (starts the server)
//   npx vitest run --project unit        everything but the workflow tests (no server)
import { defineConfig } from 'vitest/config';

const shared = {
  pool: 'forks' as const,
  fileParallelism: false,
  testTimeout: 120_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    ...shared,
    exclude: ['test/e2e/**', '**/node_modules/**'],
    projects: [
      {
        extends: true,
        test: {
          name: 'workflow',
          include: ['test/workflow/**/*.test.ts'],
          globalSetup: ['test/helpers/temporal.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**', 'test/workflow/**', '**/node_modules/**'],
        },
      },
    ],
  },
});
