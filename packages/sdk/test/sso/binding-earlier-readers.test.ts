// The request-binding cookie is read by every instance of a deployment: during a rolling
// deploy (or after a rollback) the ACS may run on an instance still on an earlier version,
// whose reader keeps only two-element `[id, expiresAtMs]` entries and drops any other shape.
// The return path the cookie now also keeps must not make that instance refuse the login
// ("InResponseTo is not bound to this browser").
import { createMaestrano, memoryAdapter, type Tenant } from '@org/maestrano-sdk';
import { createTestIdp } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';

const idp = createTestIdp();
const APP = 'https://app.example.com';

/** The reader of the versions before the return path was kept (`RequestBinding.#read`, MAC aside). */
function earlierReader(cookie: string, nowMs: number): [string, number][] {
  const value = cookie.slice(cookie.indexOf('=') + 1);
  const payload = value.slice(0, value.indexOf('.'));
  const decoded: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  if (!Array.isArray(decoded)) return [];
  return decoded.filter(
    (e): e is [string, number] => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'number' && e[1] > nowMs,
  );
}

describe('the request-binding cookie with a return path', () => {
  it('stays readable by an instance on an earlier version, and still brings the user back on this one', async () => {
    const logins: (string | null)[] = [];
    const mno = createMaestrano({
      tenants: [idp.marketplace({ name: 'acme', appHost: APP, apiId: 'app-1', apiKey: 'key-1-0123456789' })],
      storage: memoryAdapter(),
      provisioning: { createCompany: (g) => ({ id: `co-${g.uid}` }), createUser: (u) => ({ id: `us-${u.key}` }) },
      onLogin: ({ returnTo }) => {
        logins.push(returnTo);
        return new Response(null, { status: 303, headers: { location: returnTo ?? '/' } });
      },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    // Two tabs: one login with a return path, one without.
    let cookie = '';
    const locations: string[] = [];
    for (const returnTo of ['/contacts/42?tab=notes', undefined]) {
      const init = await mno.handler(new Request(mno.sso.initUrl('acme', { groupId: 'cld-1', ...(returnTo ? { returnTo } : {}) }), { headers: { cookie } }));
      expect(init.status).toBe(302);
      cookie = init.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      locations.push(init.headers.get('location') ?? '');
    }
    const entries = earlierReader(cookie, Date.now());
    expect(entries).toHaveLength(2);

    // This version: the first tab's login, its IdP posting no RelayState back.
    const { samlResponse, acsUrl } = idp.respondTo(locations[0]!, { uid: 'usr-1', email: 'a@example.com', groupUid: 'cld-1' });
    const res = await mno.handler(new Request(acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: samlResponse }), headers: { cookie } }));
    expect(res.status).toBe(303);
    expect(logins).toEqual(['/contacts/42?tab=notes']);
    // The cookie set back keeps the other tab's request, readable by both versions.
    const rest = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    expect(earlierReader(rest, Date.now()).map((e) => e[0])).toEqual([entries[1]![0]]);
  });
});

// `RequestBinding` is public (`@org/maestrano-sdk/sso`): an app that runs its own SSO routes
// checks an `InResponseTo` with `has`, which must stay next to the new `find`.
describe('RequestBinding from @org/maestrano-sdk/sso', () => {
  it('still answers has() for the ids it issued, with or without a return path', async () => {
    const { RequestBinding } = await import('@org/maestrano-sdk/sso');
    const binding = new RequestBinding({ cookieName: 'mno_sso_req', ttlMs: 600_000, secure: 'auto' });
    const tenant = { name: 'acme', api: { key: 'key-1-0123456789' } } as Tenant;
    const now = Date.now();
    const first = binding.issue(tenant, '_req-1', null, `${APP}/maestrano/auth/saml/consume`, now).split(';')[0]!;
    const cookie = binding.issue(tenant, '_req-2', first, `${APP}/maestrano/auth/saml/consume`, now, '/contacts/42').split(';')[0]!;
    expect(binding.has(tenant, '_req-1', cookie, now)).toBe(true);
    expect(binding.has(tenant, '_req-2', cookie, now)).toBe(true);
    expect(binding.has(tenant, '_req-3', cookie, now)).toBe(false);
    expect(binding.find(tenant, '_req-2', cookie, now)).toEqual({ returnTo: '/contacts/42' });
  });
});
