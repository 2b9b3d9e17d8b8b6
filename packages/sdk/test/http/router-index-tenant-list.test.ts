// The route index (61f4cda) is rebuilt whenever the tenant list changes, including with an
// app's own registry whose list() hands out the one array it adds tenants to (or replaces them
// in): compared with itself, that array never looked changed.
import { resolveTenants, type RouteKind, type RouteTable, type Tenant, type TenantRegistry } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { createRouter } from '../../src/http/router.js';

const { certificate } = createTestCertificate({ bits: 1024 });
const [base] = resolveTenants([
  { marketplace: 'base', app: { host: 'http://app.test' }, api: { id: 'id-base', key: 'key-base', host: 'http://hub.test' }, sso: { x509_certificate: certificate } },
]);

/** A marketplace of the default layout (its name in every path), its SSO start at `initPath`. */
function tenantAt(name: string, initPath: string): Tenant {
  return {
    ...base!,
    name,
    api: { ...base!.api, id: `id-${name}`, key: `key-${name}` },
    sso: { ...base!.sso, initPath, consumePath: `/maestrano/auth/saml/consume/${name}` },
    webhooks: {
      account: { groupPath: `/maestrano/account/groups/:id/${name}`, groupUserPath: `/maestrano/account/groups/:group_id/users/:id/${name}` },
      connec: { notificationPath: `/maestrano/connec/notifications/${name}`, initializationPath: null },
    },
  };
}

const KINDS: RouteKind[] = [
  'metadata',
  'samlMetadata',
  'ssoInit',
  'ssoConsume',
  'groupDeleted',
  'groupUserDeleted',
  'connecNotification',
  'syncStart',
  'syncStatus',
  'syncToggle',
  'syncUpdateMetadata',
  'connectorDependencies',
  'connectorVersion',
];

function routeTable(withSync: boolean): RouteTable {
  const routes: RouteTable = {};
  for (const kind of KINDS) {
    if (!withSync && kind.startsWith('sync')) continue;
    if (!withSync && kind.startsWith('connector')) continue;
    routes[kind] = async ({ tenant, params }) => Response.json({ kind, tenant: tenant.name, params });
  }
  return routes;
}

function logged() {
  const lines: unknown[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => lines.push([level, message, fields]);
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

async function answer(handler: (request: Request) => Promise<Response>, request: { method: string; url: string; auth: string | null }) {
  const init: RequestInit = { method: request.method, headers: request.auth ? { authorization: request.auth } : {} };
  if (request.method !== 'GET' && request.method !== 'HEAD') init.body = 'payload';
  const response = await handler(new Request(request.url, init));
  return { status: response.status, allow: response.headers.get('allow'), body: await response.text() };
}

describe('the route index follows the tenant list', () => {
  const request = (url: string) => ({ method: 'GET', url: `http://app.test${url}`, auth: null });

  it('a registry whose list() returns the one array it adds tenants to', async () => {
    // A TenantRegistry of the app's own (the config accepts any `{ get, list }`).
    const tenants = [tenantAt('acme', '/sso/init/acme')];
    const registry: TenantRegistry = { get: (name) => tenants.find((t) => t.name === name), list: () => tenants };
    const router = createRouter({ tenants: registry, routes: routeTable(false), maxBodyBytes: 1024, logger: logged().logger });
    expect((await answer(router, request('/sso/init/acme'))).status).toBe(200);
    tenants.push(tenantAt('gamma', '/sso/init/gamma'));
    const gamma = await answer(router, request('/sso/init/gamma'));
    expect(gamma.status).toBe(200);
    expect(JSON.parse(gamma.body)).toMatchObject({ kind: 'ssoInit', tenant: 'gamma' });
    // Replaced in place (same array, same index), with another path.
    tenants[0] = tenantAt('acme', '/sso/start/acme');
    expect((await answer(router, request('/sso/start/acme'))).status).toBe(200);
    expect((await answer(router, request('/sso/init/acme'))).status).toBe(404);
  });
});
