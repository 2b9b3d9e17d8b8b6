import { project } from '../../vitest.shared.ts';

// FerretDB's SQLite backend scans collections for every non-`_id` filter, so the suite's
// long seeded workloads need more than the shared 30 s on a loaded 2-core machine.
// Not isolated: the files of this project share one module graph per worker instead of
// re-importing the SDK's sources for each of them (most of this project's time was import). Each
// file closes what it opens and restores what it changes (timers, process.env); the project
// also passes with its files shuffled (`--sequence.shuffle.files`).
export default project('adapter-mongo', { globalSetup: ['./test/global-setup.ts'], testTimeout: 120_000, isolate: false });
