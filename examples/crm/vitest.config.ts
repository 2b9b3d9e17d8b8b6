import { project } from '../../vitest.shared.ts';

export default project('example-crm', { fileParallelism: false });
