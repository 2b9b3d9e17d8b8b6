// Public API of @org/maestrano-sdk/testing/storage: the storage conformance suite, for authors
// of storage adapters. It registers its cases with vitest (an optional peer dependency), which
// is why it is an entry point of its own: `@org/maestrano-sdk/testing` (the test IdP, the test
// clock) loads without vitest.
export {
  CONFORMANCE_EPOCH,
  createTestClock,
  describeStorageAdapter,
  memoryInspector,
  planStorageSuite,
  storageCases,
} from './conformance/index.js';
export type {
  DescribeStorageAdapterOptions,
  PlannedStorageCase,
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
  TestClock,
} from './conformance/index.js';
