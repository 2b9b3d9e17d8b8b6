import { defineConfig } from 'vitest/config';

// One vitest run for the whole monorepo: each package/example is a project with its own
// vitest.config.ts (see vitest.shared.ts for the common settings).
export default defineConfig({
  test: {
    projects: ['packages/*', 'examples/*', 'tests/*'],
  },
});
