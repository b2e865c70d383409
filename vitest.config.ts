import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Builds dist/ when the sources are newer: the CLI tests run bin/xenha.js, which runs dist/cli/main.js.
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/reporters/summary.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'], testTimeout: 60_000 } },
    ],
  },
});
