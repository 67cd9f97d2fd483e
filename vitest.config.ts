import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/chaos runs after, alone and one file at a time (vitest.chaos.config.ts).
    exclude: ['test/chaos/**', '**/node_modules/**'],
    // One embedded Postgres for the run; each test file gets its own database cloned from a
    // migrated template (test/helpers/global-setup.ts).
    globalSetup: ['test/helpers/build-dashboard-setup.ts', 'test/helpers/global-setup.ts'],
    // Child processes, not threads: uWS is a native addon and tests spawn and kill servers.
    pool: 'forks',
    // Two cores: more parallel files than that only makes every timing-sensitive wait slower.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
