import { project } from '../../vitest.shared.ts';

// Not isolated: the files of this project share one module graph per worker instead of
// re-importing the SDK's sources for each of them (most of this project's time was import). Each
// file closes what it opens and restores what it changes (timers, process.env); the project
// also passes with its files shuffled (`--sequence.shuffle.files`).
export default project('connec-client', { isolate: false });
