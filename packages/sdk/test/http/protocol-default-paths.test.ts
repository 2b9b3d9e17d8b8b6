// A marketplace that configures no paths serves the protocol's defaults (PROTOCOL §1.2, the
// README's "Everything else has the protocol's defaults") as well as their tenant-suffixed
// form: maestrano-rails serves every route with and without `:tenant` (PROTOCOL §1.5), and the
// platform calls whatever URL was registered on its side.
import { createMaestrano, type MarketplaceInput, memoryAdapter } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';

const cert = createTestCertificate();
const marketplace = (name: string, id: string, key: string): MarketplaceInput => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id, key, host: 'https://api-hub.example.com' },
  sso: { x509_certificate: cert.certificate },
});
const auth = (id: string, key: string) => `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`;

function app(tenants: MarketplaceInput[]) {
  const warnings: string[] = [];
  const mno = createMaestrano({
    tenants,
    storage: memoryAdapter(),
    provisioning: { createCompany: async () => ({ id: 'c' }), createUser: async () => ({ id: 'u' }) },
    onLogin: async () => new Response('ok'),
    logger: { debug: () => {}, info: () => {}, warn: (m: string) => warnings.push(m), error: () => {} },
  });
  const call = (method: string, path: string, authorization?: string) =>
    mno.handler(
      new Request(`https://app.example.com${path}`, {
        method,
        headers: { ...(authorization ? { authorization } : {}), 'content-type': 'application/json' },
        ...(method === 'POST' ? { body: '{}' } : {}),
      }),
    );
  return { call, warnings };
}

describe('protocol default paths of a marketplace that configures none', () => {
  it('serves the webhooks and the init route at the defaults and at <default>/<tenant>', async () => {
    const { call } = app([marketplace('maestrano', 'app-1', 'key-1-0123456789')]);
    const ok = auth('app-1', 'key-1-0123456789');
    for (const path of ['/maestrano/account/groups/cld-1', '/maestrano/account/groups/cld-1/maestrano']) {
      const res = await call('DELETE', path, ok);
      expect(res.status, path).toBe(200);
      expect(await res.json()).toEqual({ success: true });
    }
    for (const path of ['/maestrano/account/groups/cld-1/users/usr-1', '/maestrano/account/groups/cld-1/users/usr-1/maestrano']) {
      expect((await call('DELETE', path, ok)).status, path).toBe(200);
    }
    for (const path of ['/maestrano/connec/notifications', '/maestrano/connec/notifications/maestrano']) {
      expect((await call('POST', path, ok)).status, path).toBe(200);
    }
    // Still authenticated like every webhook.
    expect((await call('DELETE', '/maestrano/account/groups/cld-1', auth('app-1', 'wrong'))).status).toBe(401);
    // The SP-initiated start the marketplace's launch redirects to.
    const init = await call('GET', '/maestrano/auth/saml/init?group_id=cld-1');
    expect(init.status).toBe(302);
    expect(init.headers.get('location')).toMatch(/^https:\/\/api-hub\.example\.com\/api\/v1\/auth\/saml\?SAMLRequest=.*&group_id=cld-1/);
  });

  it('tells several marketplaces apart on a default webhook path by their credentials, without a warning', async () => {
    const { call, warnings } = app([marketplace('uat', 'app-u', 'key-u-0123456789'), marketplace('acme', 'app-a', 'key-a-0123456789')]);
    expect((await call('DELETE', '/maestrano/account/groups/cld-1', auth('app-a', 'key-a-0123456789'))).status).toBe(200);
    expect((await call('DELETE', '/maestrano/account/groups/cld-1', auth('app-u', 'key-u-0123456789'))).status).toBe(200);
    expect((await call('DELETE', '/maestrano/account/groups/cld-1', auth('app-u', 'key-a-0123456789'))).status).toBe(401);
    // The SSO start cannot be told apart: the tenant must be in the path.
    expect((await call('GET', '/maestrano/auth/saml/init')).status).toBe(404);
    expect((await call('GET', '/maestrano/auth/saml/init/acme')).status).toBe(302);
    expect(warnings.filter((w) => /several marketplaces/.test(w))).toEqual([]);
  });

  it('leaves a default path another marketplace configured to that marketplace', async () => {
    const { call } = app([
      { ...marketplace('own', 'app-o', 'key-o-0123456789'), sso: { x509_certificate: cert.certificate, init_path: '/maestrano/auth/saml/init' } },
      marketplace('other', 'app-x', 'key-x-0123456789'),
    ]);
    const init = await call('GET', '/maestrano/auth/saml/init');
    expect(init.status).toBe(302);
    expect(init.headers.get('set-cookie')).toMatch(/_own=/);
  });

  it('does not serve the bare default for a path the marketplace configured', async () => {
    const { call } = app([
      { ...marketplace('maestrano', 'app-1', 'key-1-0123456789'), webhooks: { account: { group_path: '/hooks/groups/:id' } } },
    ]);
    const ok = auth('app-1', 'key-1-0123456789');
    expect((await call('DELETE', '/hooks/groups/cld-1', ok)).status).toBe(200);
    expect((await call('DELETE', '/maestrano/account/groups/cld-1', ok)).status).toBe(404);
  });
});
