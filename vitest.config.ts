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
    // The sdk, connec-client and adapter projects run with `isolate: false`: their files share
    // one module graph per worker instead of re-importing the SDK's sources for each of them (most
    // of those projects' time was import). Each file there closes what it opens and restores what
    // it changes (timers, process.env), and they pass with their files shuffled
    // (`--sequence.shuffle.files`); a file that cannot (sandbox's `vi.mock`) keeps its project
    // isolated. No project runs its files one at a time in `npm test` (`fileParallelism: false`):
    // vitest schedules such a project after all the others, alone, leaving a worker idle.
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
});
