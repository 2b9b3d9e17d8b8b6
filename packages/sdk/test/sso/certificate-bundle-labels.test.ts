/**
 * The "old + new" bundle refusal must not depend on the PEM label: OpenSSL (and Node's
 * X509Certificate) read `X509 CERTIFICATE` and `TRUSTED CERTIFICATE` blocks as certificates too,
 * so a bundle written with those labels pinned its first certificate alone, silently.
 */
import { ConfigError } from '@org/maestrano-sdk';
import { createTestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { startHarness, testIdp } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };

describe('sso.x509_certificate bundles with other certificate labels', () => {
  for (const label of ['X509 CERTIFICATE', 'TRUSTED CERTIFICATE']) {
    it(`"${label}" old + new: refused at start-up, or a login signed with the new key succeeds`, async () => {
      const oldIdp = testIdp();
      const newIdp = createTestIdp({ commonName: 'idp-rotated.test' });
      const bundle = `${oldIdp.certificate.replaceAll('CERTIFICATE', label)}\n${newIdp.certificate.replaceAll('CERTIFICATE', label)}`;
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
  }
  it('a single certificate with a legacy label still works', async () => {
    const idp = testIdp();
    const h = await startHarness({ idp, tenantSso: { x509_certificate: idp.certificate.replaceAll('CERTIFICATE', 'X509 CERTIFICATE') } });
    try {
      expect((await h.login(alice)).status).toBe(200);
    } finally {
      await h.close();
    }
  });
});
