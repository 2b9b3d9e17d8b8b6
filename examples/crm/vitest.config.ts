import { project } from '../../vitest.shared.ts';

// Files run in parallel like every other project's (see tests/e2e/vitest.config.ts).
export default project('example-crm');
