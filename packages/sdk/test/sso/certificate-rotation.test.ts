/**
 * IdP certificate rotation across a rolling deploy: an operator who pins "old + new" (two PEM
 * blocks in `sso.x509_certificate`, as other SAML stacks accept during a key switch) must not
 * be left with the old certificate only, silently: once the IdP signs with the new key, every
 * login would fail. Either the configuration is refused (naming the field), or a response
 * signed with the second certificate's key is accepted.
 */
import { ConfigError } from '@org/maestrano-sdk';
import { createTestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { startHarness, testIdp } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };

describe('sso.x509_certificate holding the old and the new IdP certificate', () => {
  it('is refused at start-up, or a login signed with the new key succeeds (never silently old-only)', async () => {
    const oldIdp = testIdp();
    const newIdp = createTestIdp({ commonName: 'idp-rotated.test' });
    const bundle = `${oldIdp.certificate}\n${newIdp.certificate}`;
    let h: Awaited<ReturnType<typeof startHarness>>;
    try {
      h = await startHarness({ idp: newIdp, tenantSso: { x509_certificate: bundle } });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((i) => i.path)).toContain('tenants[0].sso.x509_certificate');
      return;
    }
    try {
      const answer = await h.login(alice);
      expect({ status: answer.status, body: answer.body }).toMatchObject({ status: 200 });
    } finally {
      await h.close();
    }
  });
});
