// Marketplace settings the SDK could load but never serve are refused when the tenants load,
// with a ConfigError naming the key and the fix, instead of failing at run time:
// - a Connec! host that ends with its base path (every Connec! call of the tenant would fail);
// - an account webhook path without the parameters its handler reads (every deletion a 400);
// - a path that ends with another marketplace's name where that one serves the same route (a
//   block copied from it: the router would give its requests to the other marketplace).
import { ConfigError, createMaestrano, memoryAdapter, parseMarketplacesDocument, staticTenants } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { basicAuth, provisionGroup } from '../billing/helpers.js';

const { certificate } = createTestCertificate({ bits: 1024 });
const marketplace = (name: string, extra: Record<string, unknown> = {}) => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${name}`, key: `key-${name}`, host: 'https://api-hub.example.com' },
  sso: { x509_certificate: certificate },
  ...extra,
});
const problems = (...marketplaces: unknown[]): { path: string; message: string }[] => {
  try {
    parseMarketplacesDocument({ marketplaces }, 'maestrano.json');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues.map(({ path, message }) => ({ path, message }));
  }
  return [];
};

describe('a Connec! host that ends with the base path', () => {
  it('is refused, naming the host to use; a host under a path of its own is fine', () => {
    expect(problems(marketplace('acme', { connec: { host: 'https://api-connec.example.com/api/v2/' } }))).toEqual([
      { path: 'marketplaces[0].connec.host', message: 'must not end with the base path /api/v2, which is added to it (use https://api-connec.example.com)' },
    ]);
    expect(problems(marketplace('acme', { connec: { host: 'https://gw.example.com/connec/v3', base_path: '/v3' } }))).toEqual([
      { path: 'marketplaces[0].connec.host', message: 'must not end with the base path /v3, which is added to it (use https://gw.example.com/connec)' },
    ]);
    expect(problems(marketplace('acme', { connec: { host: 'https://gw.example.com/connec' } }))).toEqual([]);
    // A marketplace without Connec! is not refused for it.
    expect(problems(marketplace('acme', { connec: { enabled: false, host: 'https://api-connec.example.com/api/v2' } }))).toEqual([]);
  });
});

describe('account webhook paths', () => {
  it('without the parameters their handlers read are refused, naming them', () => {
    const account = (paths: Record<string, string>) => marketplace('acme', { webhooks: { account: paths } });
    expect(problems(account({ group_path: '/maestrano/account/groups/acme' }))).toEqual([
      {
        path: 'marketplaces[0].webhooks.account.group_path',
        message: 'must hold the group id as a :id (or :group_id) segment, as in /maestrano/account/groups/:id',
      },
    ]);
    expect(problems(account({ group_user_path: '/maestrano/account/groups/:group_id/users/acme' })).map((p) => p.path)).toEqual([
      'marketplaces[0].webhooks.account.group_user_path',
    ]);
    expect(problems(account({ group_user_path: '/maestrano/account/groups/:id/users/:user_id' })).map((p) => p.path)).toEqual([
      'marketplaces[0].webhooks.account.group_user_path',
    ]);
  });

  it('naming the group :group_id (and the user :user_id) work end to end', async () => {
    const [tenant] = parseMarketplacesDocument(
      {
        marketplaces: [
          marketplace('acme', {
            webhooks: { account: { group_path: '/hooks/groups/:group_id', group_user_path: '/hooks/groups/:group_id/members/:user_id' } },
          }),
        ],
      },
      'maestrano.json',
    );
    const storage = memoryAdapter();
    const cancelled: string[] = [];
    const mno = createMaestrano({
      tenants: staticTenants([tenant!]),
      storage,
      provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }), cancelCompany: (c) => void cancelled.push(c.id) },
      onLogin: () => new Response('ok'),
      billing: { cancelRecurringBillsOnGroupDeleted: false },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    await provisionGroup(storage, 'acme', 'cld-1', { companyId: 'acme-co' });
    const call = (path: string) =>
      mno.handler(new Request(`https://app.example.com${path}`, { method: 'DELETE', headers: { authorization: basicAuth('app-acme', 'key-acme') } }));
    expect((await call('/hooks/groups/cld-1/members/usr-404')).status).toBe(200);
    expect((await call('/hooks/groups/cld-1')).status).toBe(200);
    expect(cancelled).toEqual(['acme-co']);
    expect((await storage.groups.get('acme', 'cld-1'))?.status).toBe('cancelled');
  });
});

describe("a path ending with another marketplace's name", () => {
  it('is refused when that marketplace serves a route of the same shape and method', () => {
    const uat = marketplace('maestrano-uat');
    const copied = marketplace('acme', { webhooks: { account: { group_path: '/maestrano/account/groups/:id/maestrano-uat' } } });
    expect(problems(uat, copied)).toEqual([
      {
        path: 'marketplaces[1].webhooks.account.group_path',
        message:
          '/maestrano/account/groups/:id/maestrano-uat ends with the name of marketplace "maestrano-uat", which serves that path: requests on it would go to "maestrano-uat" (a block copied from it?)',
      },
    ]);
    const copiedAcs = marketplace('acme', { sso: { x509_certificate: certificate, consume_path: '/maestrano/auth/saml/consume/maestrano-uat' } });
    expect(problems(uat, copiedAcs).map((p) => p.path)).toEqual(['marketplaces[1].sso.consume_path']);
  });

  it('is fine when no other marketplace has that name, or none serves that shape there', () => {
    const own = marketplace('acme', { webhooks: { account: { group_path: '/maestrano/account/groups/:id/acme' } } });
    expect(problems(marketplace('maestrano-uat'), own)).toEqual([]);
    // "notifications" is a marketplace, but its own notification route is /maestrano/connec/notifications/notifications.
    const shared = marketplace('acme', { webhooks: { connec: { notification_path: '/maestrano/connec/notifications' } } });
    expect(problems(marketplace('notifications'), shared)).toEqual([]);
  });
});
