import { project } from '../../vitest.shared.ts';

// pg's CommonJS entry require()s pg-pool, whose exports map sends the `import` condition to
// an ES module, which hands pg a module namespace instead of the Pool class ("Class extends
// value [object Module]"). Drop `import` here, as adapter-prisma does; the other shared
// conditions still resolve workspace packages to their sources.
// Files run in parallel like every other project's: a project that runs its files one at a
// time is scheduled after the others, alone, leaving one of CI's two workers idle.
const base = project('e2e');
const conditions = ['@org/source', 'node', 'module', 'default'];

export default {
  ...base,
  resolve: { ...base.resolve, conditions },
  ssr: { ...base.ssr, resolve: { ...base.ssr?.resolve, conditions, externalConditions: ['@org/source'] } },
};
