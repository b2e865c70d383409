import { defineConfig } from 'vitest/config';

/**
 * The end-to-end files that spend their time waiting on real processes (Prometheus, Alertmanager, the
 * heartbeat daemons, the service killed and restarted) and on real-time dead-afters, not on the CPU:
 * they run two at a time, apart from everything else (their group runs first, as the CI logs show).
 * The largest file starts first (vitest's order without a cache), so the campaign's stories on the
 * loop take one worker and the others follow one another on the second.
 *
 * The other group runs two lanes of one file at a time each: `integration` (the long files, with the
 * timing and CPU-heavy ones: a hostile XAPI, the campaign, the service) and `quick` (the unit tests and
 * the short integration files below, CLI runs and small suites with no timing bound of their own), so
 * that the second core does not idle once the unit tests are done.
 */
const WAITING_E2E = [
  'test/integration/campaign-loop.test.ts',
  'test/integration/loop-e2e.test.ts',
  'test/integration/remediation-crash.test.ts',
  'test/integration/loop.test.ts',
  'test/integration/tour.test.ts',
];

/** Short integration files (a few seconds each, no timing bound of their own): in the `quick` lane. */
const QUICK_INTEGRATION = [
  'test/integration/plan-cli.test.ts',
  'test/integration/cli-input.test.ts',
  'test/integration/alert-rules.test.ts',
  'test/integration/cli.test.ts',
  'test/integration/detection.test.ts',
  'test/integration/xen-api-client.test.ts',
  'test/integration/faults.test.ts',
  'test/integration/cli-heartbeat.test.ts',
  'test/integration/simulator-fidelity.test.ts',
  'test/integration/fence-dummy.test.ts',
  'test/integration/simulator-hardening.test.ts',
  'test/integration/stream-records.test.ts',
  'test/integration/deploy-configs.test.ts',
  'test/integration/xapi-actions.test.ts',
  'test/integration/simulator-ha.test.ts',
  'test/integration/python-xenapi.test.ts',
  'test/integration/exporter-shutdown.test.ts',
  'test/integration/remediation-traces.test.ts',
  'test/integration/probes.test.ts',
  'test/integration/sampler.test.ts',
  'test/integration/pool-limits.test.ts',
  'test/integration/process-guard.test.ts',
];

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
          name: 'quick',
          include: ['test/unit/**/*.test.ts', ...QUICK_INTEGRATION],
          testTimeout: 60_000,
          maxWorkers: 1,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: [...WAITING_E2E, ...QUICK_INTEGRATION],
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
