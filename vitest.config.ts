import { defineConfig } from 'vitest/config';

/**
 * The end-to-end files that spend their time waiting on real processes (Prometheus, Alertmanager, the
 * heartbeat daemons, the service killed and restarted) and on real-time dead-afters, not on the CPU:
 * they run two at a time, apart from everything else (which runs one file at a time: its timing tests
 * share the two cores with nothing). The largest file starts first (vitest's order without a cache), so
 * the campaign's stories on the loop take one worker and the others follow one another on the second.
 */
const WAITING_E2E = [
  'test/integration/campaign-loop.test.ts',
  'test/integration/loop-e2e.test.ts',
  'test/integration/remediation-crash.test.ts',
  'test/integration/loop.test.ts',
  'test/integration/tour.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Builds dist/ when the sources are newer: the CLI tests run bin/xenha.js, which runs dist/cli/main.js.
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/reporters/summary.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], maxWorkers: 1, sequence: { groupOrder: 0 } } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: WAITING_E2E,
          testTimeout: 60_000,
          maxWorkers: 1,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'e2e', include: WAITING_E2E, testTimeout: 60_000, maxWorkers: 2, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
