import { project } from '../../vitest.shared.ts';

// pg's CommonJS entry require()s pg-pool, whose exports map sends the `import` condition
// to an ES module; resolving externals with the shared `import` condition hands pg a
// module namespace instead of the Pool class ("Class extends value [object Module]").
// Drop `import` for this package (the others in the shared list still resolve sources).
// Not isolated (`isolate: false`): see the root vitest.config.ts.
const base = project('adapter-prisma', { isolate: false });
const conditions = ['@org/source', 'node', 'module', 'default'];

export default {
  ...base,
  resolve: { ...base.resolve, conditions },
  ssr: { ...base.ssr, resolve: { ...base.ssr?.resolve, conditions, externalConditions: ['@org/source'] } },
};
