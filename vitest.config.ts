import { defineConfig } from 'vitest/config';

// chDB must not load in a worker thread (the process segfaults when the worker exits), and holds
// one data directory per process: `forks` gives each test file its own process.
export default defineConfig({
  test: {
    pool: 'forks',
    globalSetup: ['./test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    include: ['test/**/*.test.ts'],
  },
});
