import { project } from '../../vitest.shared.ts';

// One file: packs the packages, installs the tarballs into a scratch app and runs it there.
export default project('packaging', { include: ['packaging.test.ts', 'engines.test.ts', 'public-types.test.ts'], testTimeout: 180_000, hookTimeout: 420_000 });
