// What `@org/maestrano-sdk/testing` takes from the conformance folder: nothing here loads vitest.
export { CONFORMANCE_EPOCH, createTestClock } from './clock.js';
export type { TestClock } from './clock.js';
export { memoryInspector } from './memory-inspector.js';
export type {
  DescribeStorageAdapterOptions,
  StorageAbility,
  StorageCase,
  StorageCaseContext,
  StorageCaseFn,
  StorageCases,
  StorageInspector,
  StorageOutageHooks,
  StorageRepositoryName,
  StorageSetupContext,
  StorageSetupResult,
  StoredCursor,
  StoredGroup,
  StoredIdMap,
  StoredJob,
  StoredLedgerEntry,
  StoredLock,
  StoredMembership,
  StoredReplay,
  StoredUser,
} from './types.js';
