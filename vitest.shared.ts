import { defineProject, type UserWorkspaceConfig } from 'vitest/config';

/**
 * Resolve workspace packages to their TypeScript sources (the `@org/source` export
 * condition), so tests and typecheck never need a prior build.
 */
// No `import` here: pg's CommonJS entry require()s pg-pool, whose exports map would send
// `import` to an ES module and hand pg a module namespace instead of the Pool class.
const conditions = ['@org/source', 'node', 'module', 'default'];

export function project(name: string, test: UserWorkspaceConfig['test'] = {}) {
  return defineProject({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@org/source'] } },
    test: {
      name,
      environment: 'node',
      clearMocks: true,
      restoreMocks: true,
      testTimeout: 30_000,
      hookTimeout: 60_000,
      // expect.poll waits for a condition (a request reaching a loopback server, a background
      // purge): its default of 1 s is a guess a loaded CI machine can miss. A condition that
      // holds ends the wait at once; only a failing test waits this long.
      expect: { poll: { timeout: 10_000 } },
      ...test,
    },
  });
}
