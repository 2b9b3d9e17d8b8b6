import { project } from '../../vitest.shared.ts';

// Same resolution as tests/e2e: pg's CommonJS entry must not get the `import` condition
// (pg-pool would hand it a module namespace); workspace packages still resolve to sources.
const full = process.env.RELIABILITY_FULL === '1';
const base = project('reliability', {
  // The long runs (RELIABILITY_FULL) one file at a time; in `npm test` in parallel like every
  // other project's files (see tests/e2e/vitest.config.ts).
  fileParallelism: !full,
  testTimeout: full ? 1_800_000 : 120_000,
  hookTimeout: full ? 600_000 : 120_000,
});
const conditions = ['@org/source', 'node', 'module', 'default'];

export default {
  ...base,
  resolve: { ...base.resolve, conditions },
  ssr: { ...base.ssr, resolve: { ...base.ssr?.resolve, conditions, externalConditions: ['@org/source'] } },
};
