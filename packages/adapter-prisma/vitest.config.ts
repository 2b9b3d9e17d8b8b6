import { project } from '../../vitest.shared.ts';

// pg's CommonJS entry require()s pg-pool, whose exports map sends the `import` condition
// to an ES module; resolving externals with the shared `import` condition hands pg a
// module namespace instead of the Pool class ("Class extends value [object Module]").
// Drop `import` for this package (the others in the shared list still resolve sources).
// Not isolated: the files of this project share one module graph per worker instead of
// re-importing the SDK's sources for each of them (most of this project's time was import). Each
// file closes what it opens and restores what it changes (timers, process.env); the project
// also passes with its files shuffled (`--sequence.shuffle.files`).
const base = project('adapter-prisma', { isolate: false });
const conditions = ['@org/source', 'node', 'module', 'default'];

export default {
  ...base,
  resolve: { ...base.resolve, conditions },
  ssr: { ...base.ssr, resolve: { ...base.ssr?.resolve, conditions, externalConditions: ['@org/source'] } },
};
