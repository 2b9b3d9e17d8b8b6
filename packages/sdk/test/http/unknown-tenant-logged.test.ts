// A request on one of the SDK's routes for a marketplace this app does not serve (a stale launch
// link, a marketplace name misspelt in the platform's settings) answers 404 `unknown_tenant` and
// says so in the log, with the marketplaces served, also without `sso.onError` (it was silent).
import { createMaestrano, memoryAdapter } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';

const { certificate } = createTestCertificate({ bits: 1024 });

function app() {
  const warnings: { message: string; fields: Record<string, unknown> }[] = [];
  const mno = createMaestrano({
    tenants: [{ marketplace: 'acme', app: { host: 'https://app.example.com' }, api: { id: 'app-1', key: 'key-1-0123456789', host: 'https://hub.example.com' }, sso: { x509_certificate: certificate } }],
    storage: memoryAdapter(),
    provisioning: { createCompany: async () => ({ id: 'c' }), createUser: async () => ({ id: 'u' }) },
    onLogin: async () => new Response('ok'),
    logger: { debug() {}, info() {}, warn: (message, fields) => warnings.push({ message, fields: fields ?? {} }), error() {} },
  });
  return { mno, warnings };
}

describe('a route naming a marketplace the app does not serve', () => {
  it('answers 404 unknown_tenant and logs the route, the path and the marketplaces served', async () => {
    const { mno, warnings } = app();
    const init = await mno.handler(new Request('https://app.example.com/maestrano/auth/saml/init/maestrano?group_id=cld-1'));
    expect(init.status).toBe(404);
    expect(await init.json()).toEqual({ error: 'unknown_tenant', message: 'Unknown tenant' });
    const hook = await mno.handler(new Request('https://app.example.com/maestrano/account/groups/cld-1/gone', { method: 'DELETE' }));
    expect(hook.status).toBe(404);
    expect(warnings).toEqual([
      { message: 'maestrano: request for a marketplace this app does not serve', fields: { route: 'ssoInit', method: 'GET', path: '/maestrano/auth/saml/init/maestrano', tenants: ['acme'] } },
      { message: 'maestrano: request for a marketplace this app does not serve', fields: { route: 'groupDeleted', method: 'DELETE', path: '/maestrano/account/groups/cld-1/gone', tenants: ['acme'] } },
    ]);
  });

  it('a path that is none of the routes stays a silent 404 (scanners are not logged)', async () => {
    const { mno, warnings } = app();
    const res = await mno.handler(new Request('https://app.example.com/wp-admin/setup.php'));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'unknown_tenant', message: 'Unknown tenant' });
    expect(warnings).toEqual([]);
  });
});
