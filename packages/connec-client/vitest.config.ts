import { project } from '../../vitest.shared.ts';

// Not isolated (`isolate: false`): see the root vitest.config.ts.
export default project('connec-client', { isolate: false });
