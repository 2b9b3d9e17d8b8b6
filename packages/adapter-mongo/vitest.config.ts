import { project } from '../../vitest.shared.ts';

export default project('adapter-mongo', { globalSetup: ['./test/global-setup.ts'] });
