import { defineConfig } from 'vitest/config';

// Fault-injection scenarios (test/chaos): each file owns its Postgres and spawns the built server,
// and they run one at a time, so one scenario's load never skews another's latencies.
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 180_000,
  },
});
