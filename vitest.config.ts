import { defineConfig } from 'vitest/config';

// One vitest run for the whole monorepo: each package/example/test workspace is a project
// with its own vitest.config.ts (common settings in vitest.shared.ts).
export default defineConfig({
  test: {
    projects: ['packages/*', 'examples/*', 'tests/*', 'docs'],
    // Vitest's default in run mode is one worker per core less one: a single worker on the
    // 2-core CI machine, so every file ran in turn while most of them wait on PostgreSQL,
    // FerretDB, loopback servers or child processes. Two overlap that waiting.
    maxWorkers: 2,
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
});
