import { project } from '../../vitest.shared.ts';

export default project('e2e', { fileParallelism: false });
