import { project } from '../../vitest.shared.ts';

// Same resolution as tests/e2e: pg's CommonJS entry must not get the `import` condition
// (pg-pool would hand it a module namespace); workspace packages still resolve to sources.
const full = process.env.RELIABILITY_FULL === '1';
const base = project('reliability', {
  fileParallelism: false,
  testTimeout: full ? 1_800_000 : 120_000,
  hookTimeout: full ? 600_000 : 120_000,
});
const conditions = ['@org/source', 'node', 'module', 'default'];

export default {
  ...base,
  resolve: { ...base.resolve, conditions },
  ssr: { ...base.ssr, resolve: { ...base.ssr?.resolve, conditions, externalConditions: ['@org/source'] } },
};
