import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { basic } from './helpers.js';

describe('developer platform document (PROTOCOL §1.4)', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox({ port: 0, appUrl: 'http://localhost:3000', marketplaces: ['alpha', 'beta'] });
  });
  afterAll(() => sb.stop());

  it('GET marketplaces - requires the environment key and secret', async () => {
    const none = await fetch(sb.marketplacesUrl);
    expect(none.status).toBe(401);
    expect(await none.json()).toHaveProperty('error');
    const wrong = await fetch(sb.marketplacesUrl, { headers: { authorization: basic(sb.credentials.environment.apiKey, 'nope') } });
    expect(wrong.status).toBe(401);
  });

  it('GET marketplaces - one preset per marketplace with tenant-suffixed paths and its own keys and certificate', async () => {
    const { apiKey, apiSecret } = sb.credentials.environment;
    const res = await fetch(sb.marketplacesUrl, { headers: { authorization: basic(apiKey, apiSecret), accept: 'application/json' } });
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { marketplaces: Array<Record<string, Record<string, unknown> & { account?: Record<string, string>; connec?: Record<string, unknown> }>> };
    expect(doc.marketplaces.map((m) => m.marketplace)).toEqual(['alpha', 'beta']);
    const [alpha, beta] = doc.marketplaces;
    if (!alpha || !beta) throw new Error('missing marketplaces');
    expect(alpha.app).toMatchObject({ host: 'http://localhost:3000' });
    expect(alpha.api).toMatchObject({ host: sb.url, base: '/api/v1/' });
    expect(alpha.sso).toMatchObject({
      idp: sb.url,
      init_path: '/maestrano/auth/saml/init/alpha',
      consume_path: '/maestrano/auth/saml/consume/alpha',
    });
    expect(alpha.connec).toEqual({ host: sb.url, base_path: '/api/v2', timeout: 300 });
    expect(alpha.webhooks).toEqual({
      account: { group_path: '/maestrano/account/groups/:id/alpha', group_user_path: '/maestrano/account/groups/:group_id/users/:id/alpha' },
      connec: { external_ids: true, initialization_path: null, notification_path: '/maestrano/connec/notifications/alpha' },
    });
    const creds = sb.credentials.marketplaces;
    expect(alpha.api?.id).toBe(creds[0]?.apiId);
    expect(alpha.api?.key).toBe(creds[0]?.apiKey);
    expect(alpha.api?.id).not.toBe(beta.api?.id);
    const certA = String(alpha.sso?.x509_certificate);
    const certB = String(beta.sso?.x509_certificate);
    expect(certA).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(certA).not.toBe(certB);
    const x509 = new X509Certificate(certA);
    expect(alpha.sso?.x509_fingerprint).toBe(x509.fingerprint);
    expect(String(alpha.sso?.x509_fingerprint)).toMatch(/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
    expect(x509.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it('startSandbox - rejects a malformed appUrl with a TypeError and a busy port with EADDRINUSE', async () => {
    await expect(startSandbox({ appUrl: 'not a url' })).rejects.toThrow(TypeError);
    const port = Number(new URL(sb.url).port);
    await expect(startSandbox({ appUrl: 'http://localhost:3000', port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('request bodies above the cap are refused with 413', async () => {
    const big = 'x'.repeat(17 * 1024 * 1024);
    const res = await fetch(`${sb.url}/api/v2/cld-x/people`, { method: 'POST', body: big }).catch((e: unknown) => e);
    // The answer normally arrives; if the socket closes first while uploading, it must be a reset, not a success.
    if (res instanceof Response) expect(res.status).toBe(413);
    else expect(res).toMatchObject({ cause: { code: expect.stringMatching(/EPIPE|ECONNRESET|UND_ERR_SOCKET/) } });
  });

  it('maxBodyBytes lowers the cap (413 above it, accepted at it) and must be a positive integer', async () => {
    await expect(startSandbox({ appUrl: 'http://localhost:3000', maxBodyBytes: 0 })).rejects.toThrow(/maxBodyBytes must be a positive integer/);
    await expect(startSandbox({ appUrl: 'http://localhost:3000', maxBodyBytes: 1.5 })).rejects.toThrow(TypeError);
    const small = await startSandbox({ appUrl: 'http://localhost:3000', maxBodyBytes: 64 });
    try {
      const post = (body: string) => fetch(`${small.url}/api/config/v1/marketplaces`, { method: 'POST', body });
      expect((await post('x'.repeat(65))).status).toBe(413);
      expect((await post('x'.repeat(64))).status).not.toBe(413);
    } finally {
      await small.stop();
    }
  });
});
