// Public API of @org/maestrano-sdk/testing: helpers for integrators' and adapter authors'
// tests. Each module keeps its exports in its own section below.

// --- storage conformance suite --------------------------------------------------------
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

// --- test SAML identity provider ------------------------------------------------------
export { buildAssertionXml, buildResponseXml, createTestCertificate, createTestIdp, maestranoAttributes, signAssertion, stripSignature, tamperAttribute, xsw } from './idp.js';
export type { AssertionOptions, LoginOptions, ParsedAuthnRequest, ResponseEnvelopeOptions, TestIdp, TestSignatureAlgorithm, TestUser, XswLayout } from './idp.js';
