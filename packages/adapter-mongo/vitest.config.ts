import { project } from '../../vitest.shared.ts';

// FerretDB's SQLite backend scans collections for every non-`_id` filter, so the suite's
// long seeded workloads need more than the shared 30 s on a loaded 2-core machine.
// Not isolated (`isolate: false`): see the root vitest.config.ts.
export default project('adapter-mongo', { globalSetup: ['./test/global-setup.ts'], testTimeout: 120_000, isolate: false });
