// Public API of @org/maestrano-sdk/testing: helpers for integrators' and adapter authors'
// tests. Each module keeps its exports in its own section below.

// --- storage inspection and the test clock ----------------------------------------------
// The conformance suite itself (`describeStorageAdapter`, `planStorageSuite`, `storageCases`)
// registers vitest tests: it is in `@org/maestrano-sdk/testing/storage`, so that this entry
// loads without vitest (tests on node:test or Jest use the test IdP too).
export * from './conformance/clock-and-inspector.js';

// --- test SAML identity provider ------------------------------------------------------
export { buildAssertionXml, buildResponseXml, createTestCertificate, createTestIdp, maestranoAttributes, signAssertion, stripSignature, tamperAttribute, xsw } from './idp.js';
export type { AssertionOptions, LoginOptions, ParsedAuthnRequest, ResponseEnvelopeOptions, TestIdp, TestSignatureAlgorithm, TestUser, XswLayout } from './idp.js';
