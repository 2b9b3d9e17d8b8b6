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

/**
 * An IdP key rollover: while it lasts, some responses are signed with the old key and some with
 * the new one, so the operator (or the dev-platform document) pins both. Each pinned certificate
 * is a trust anchor; a response verified with one must not claim another signer in its KeyInfo.
 */
describe('sso.x509_certificate pinning the old and the new IdP certificate during a rollover', () => {
  const withoutKeyInfo = (xml: string) => xml.replace(/<ds:KeyInfo>[\s\S]*?<\/ds:KeyInfo>/, '');

  it('accepts a response signed with either key, with or without KeyInfo, and refuses any other key', async () => {
    const oldIdp = testIdp();
    const newIdp = createTestIdp({ commonName: 'idp-rotated.test' });
    const h = await startHarness({ idp: oldIdp, tenantSso: { x509_certificate: `${oldIdp.certificate}\n${newIdp.certificate}` } });
    try {
      expect((await h.login(alice)).status).toBe(200);
      expect((await h.login(alice, { idp: newIdp })).status).toBe(200);
      expect((await h.login(alice, { idp: oldIdp, mutateSigned: withoutKeyInfo })).status).toBe(200);
      expect((await h.login(alice, { idp: newIdp, mutateSigned: withoutKeyInfo })).status).toBe(200);

      const stranger = createTestIdp({ commonName: 'idp-stranger.test' });
      const refused = await h.login(alice, { idp: stranger });
      expect(refused.status).toBe(400);
      expect(refused.body['error']).toBe('certificate');
      const bare = await h.login(alice, { idp: stranger, mutateSigned: withoutKeyInfo });
      expect(bare.status).toBe(400);
      expect(bare.body['error']).toBe('signature');
      // Signed with the new key while its KeyInfo names the old (also pinned) certificate.
      const claimsOld = (xml: string) => xml.replace(/<ds:X509Certificate>[\s\S]*?<\/ds:X509Certificate>/, `<ds:X509Certificate>${oldIdp.certificate.replace(/-----[A-Z ]+-----|\s/g, '')}</ds:X509Certificate>`);
      const mismatch = await h.login(alice, { idp: newIdp, mutateSigned: claimsOld });
      expect(mismatch.status).toBe(400);
      expect(mismatch.body['error']).toBe('embedded_certificate_mismatch');
    } finally {
      await h.close();
    }
  });

  it('checks sso.x509_fingerprint against every pinned certificate: one of them must match', async () => {
    const oldIdp = testIdp();
    const newIdp = createTestIdp({ commonName: 'idp-rotated.test' });
    const bundle = `${oldIdp.certificate}\n${newIdp.certificate}`;
    const h = await startHarness({ idp: newIdp, tenantSso: { x509_certificate: bundle, x509_fingerprint: newIdp.fingerprint } });
    await h.close();
    const stranger = createTestIdp({ commonName: 'idp-stranger.test' });
    const error = await startHarness({ idp: newIdp, tenantSso: { x509_certificate: bundle, x509_fingerprint: stranger.fingerprint } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.path)).toContain('tenants[0].sso.x509_fingerprint');
  });
});
