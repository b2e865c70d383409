import { defineConfig } from 'vitest/config';

/**
 * Three groups, one after another (vitest runs its groups in turn, and gives one worker count to a
 * whole group: projects of one groupOrder share it; a project of one worker at groupOrder 0 joins a
 * group of its own that runs last).
 *
 * 1. `tests` (groupOrder 0, two workers): the unit tests and the integration files, two files at a time,
 *    the largest first (vitest's order without a cache).
 * 2. `e2e` (groupOrder 1, two workers): the end-to-end files that spend their time waiting on real
 *    processes (Prometheus, Alertmanager, the heartbeat daemons, the service killed and restarted) and
 *    on real-time dead-afters. The largest starts first, so the campaign's stories on the loop take
 *    one worker and the others follow one another on the second.
 * 3. `alone` (one worker, last): files whose timing bounds are tight enough to want both cores to
 *    themselves (the exporter against a hostile XAPI answers /metrics within a second, its healthy
 *    pool's samples stay fresh, on a 250 ms sample interval).
 */
const WAITING_E2E = [
  'test/integration/campaign-loop.test.ts',
  'test/integration/loop-e2e.test.ts',
  'test/integration/remediation-crash.test.ts',
  'test/integration/loop.test.ts',
  'test/integration/tour.test.ts',
];

const ALONE = ['test/integration/hostile-xapi.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Builds dist/ when the sources are newer: the CLI tests run bin/xenha.js, which runs dist/cli/main.js.
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/reporters/summary.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'tests',
          include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
          exclude: [...WAITING_E2E, ...ALONE],
          testTimeout: 60_000,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'e2e', include: WAITING_E2E, testTimeout: 60_000, maxWorkers: 2, sequence: { groupOrder: 1 } },
      },
      {
        extends: true,
        test: { name: 'alone', include: ALONE, testTimeout: 60_000, maxWorkers: 1, sequence: { groupOrder: 0 } },
      },
    ],
  },
});
