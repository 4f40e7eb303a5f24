import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    // the default report, then one plain "N passed, N failed" line for CI
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
