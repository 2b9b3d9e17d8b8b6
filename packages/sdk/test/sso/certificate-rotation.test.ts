/**
 * IdP certificate rotation across a rolling deploy: an operator who pins "old + new" (two PEM
 * blocks in `sso.x509_certificate`, as other SAML stacks accept during a key switch) must not
 * be left with the old certificate only, silently: once the IdP signs with the new key, every
 * login would fail. Either the configuration is refused (naming the field), or a response
 * signed with the second certificate's key is accepted. Whatever the PEM label: OpenSSL (and
 * Node's X509Certificate) read `X509 CERTIFICATE` and `TRUSTED CERTIFICATE` blocks as
 * certificates too.
 */
import { ConfigError } from '@org/maestrano-sdk';
import { createTestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { startHarness, testIdp } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };

/** Pins `certificate` and signs with `idp`: refused at start-up, or the login succeeds. */
async function refusedOrSignsIn(idp: ReturnType<typeof createTestIdp>, certificate: string): Promise<void> {
  let h: Awaited<ReturnType<typeof startHarness>>;
  try {
    h = await startHarness({ idp, tenantSso: { x509_certificate: certificate } });
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
}

const relabel = (pem: string, label: string) => pem.replaceAll('CERTIFICATE', label);

describe('sso.x509_certificate holding the old and the new IdP certificate', () => {
  it('is refused at start-up, or a login signed with the new key succeeds (never silently old-only)', async () => {
    const newIdp = createTestIdp({ commonName: 'idp-rotated.test' });
    await refusedOrSignsIn(newIdp, `${testIdp().certificate}\n${newIdp.certificate}`);
  });
});

describe('sso.x509_certificate bundles with other certificate labels', () => {
  for (const label of ['X509 CERTIFICATE', 'TRUSTED CERTIFICATE']) {
    it(`"${label}" old + new: refused at start-up, or a login signed with the new key succeeds`, async () => {
      const newIdp = createTestIdp({ commonName: 'idp-rotated.test' });
      await refusedOrSignsIn(newIdp, `${relabel(testIdp().certificate, label)}\n${relabel(newIdp.certificate, label)}`);
    });
  }
  it('a single certificate with a legacy label still works', async () => {
    const idp = testIdp();
    const h = await startHarness({ idp, tenantSso: { x509_certificate: relabel(idp.certificate, 'X509 CERTIFICATE') } });
    try {
      expect((await h.login(alice)).status).toBe(200);
    } finally {
      await h.close();
    }
  });
});
