// Public API of @org/maestrano-sdk/testing/storage: the storage conformance suite, for authors
// of storage adapters. It registers its cases with vitest (an optional peer dependency), which
// is why it is an entry point of its own: `@org/maestrano-sdk/testing` (the test IdP, the test
// clock) loads without vitest.
export * from './conformance/index.js';
