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
import { createTestIdp, type LoginOptions, type TestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { type Harness, type LoginAnswer, startHarness, testIdp } from './harness.js';
import { signResponse } from './sign-response.js';

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


/** SP-initiated login whose assertion `idp` builds (and signs) and whose Response `key` then signs. */
async function loginSignedBy(h: Harness, idp: TestIdp, key: TestIdp, options: LoginOptions = {}): Promise<LoginAnswer> {
  const started = await h.init(h.tenant, `?group_id=${alice.groupUid}`);
  const request = idp.parseAuthnRequest(started.location);
  const xml = idp.responseXml(alice, { ...options, acsUrl: request.acsUrl, inResponseTo: request.id });
  return h.post(Buffer.from(signResponse(xml, key), 'utf8').toString('base64'), { cookie: started.cookie });
}

/**
 * A Response signed with one pinned key around an assertion that key does not verify is
 * refused, for the same reason whatever the order of the bundle and as a tenant pinning that
 * key alone: its KeyInfo names a pinned certificate, not another IdP's.
 */
describe('a rollover bundle: a signed Response whose assertion is not signed with the same key', () => {
  it("is refused as a bad signature (not an embedded certificate mismatch), whichever the bundle's order", async () => {
    const oldIdp = testIdp();
    const newIdp = createTestIdp({ commonName: 'idp-rotated.test' });
    const reasons = async (x509_certificate: string) => {
      const h = await startHarness({ idp: oldIdp, tenantSso: { x509_certificate } });
      try {
        return [
          // The Response signed with the new key, the assertion with the old one (and the reverse).
          (await loginSignedBy(h, oldIdp, newIdp)).body['error'],
          (await loginSignedBy(h, newIdp, oldIdp)).body['error'],
          // The Response signed with the new key around an unsigned assertion.
          (await loginSignedBy(h, newIdp, newIdp, { sign: false })).body['error'],
        ];
      } finally {
        await h.close();
      }
    };
    // Pinned alone, the new key: the old one is another IdP's.
    expect(await reasons(newIdp.certificate)).toEqual(['certificate', 'embedded_certificate_mismatch', 'signature']);
    expect(await reasons(`${oldIdp.certificate}\n${newIdp.certificate}`)).toEqual(['signature', 'signature', 'signature']);
    expect(await reasons(`${newIdp.certificate}\n${oldIdp.certificate}`)).toEqual(['signature', 'signature', 'signature']);

    // Another IdP's certificate in the Response's KeyInfo is still the reason given.
    const stranger = createTestIdp({ commonName: 'idp-stranger.test' });
    const h = await startHarness({ idp: oldIdp, tenantSso: { x509_certificate: `${oldIdp.certificate}\n${newIdp.certificate}` } });
    try {
      expect((await loginSignedBy(h, oldIdp, stranger)).body['error']).toBe('embedded_certificate_mismatch');
    } finally {
      await h.close();
    }
  });
});
