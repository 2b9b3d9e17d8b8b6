import { defineConfig } from 'vitest/config';

// One vitest run for the whole monorepo: each package/example/test workspace is a project
// with its own vitest.config.ts (common settings in vitest.shared.ts).
export default defineConfig({
  test: {
    projects: ['packages/*', 'examples/*', 'tests/*', 'docs'],
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
});
