// The storage conformance suite. `clock-and-inspector.ts` holds what loads without vitest (the
// test clock, the memory inspector, the types); the runner and the cases register vitest tests.
export * from './clock-and-inspector.js';
export { storageCases } from './cases/index.js';
export type { PlannedStorageCase } from './runner.js';
export { describeStorageAdapter, planStorageSuite } from './runner.js';
