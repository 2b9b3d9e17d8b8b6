// Cookie tossing: a page on a sibling subdomain can set a cookie for the parent domain. With the
// attacker's own signed request-binding cookie planted in the victim's browser, the attacker's
// SAML response (for the attacker's account) would pass the InResponseTo check and log the
// victim in as the attacker (login CSRF). Over https the binding is a `__Host-` cookie, which
// browsers accept only from the app's own host, and a cookie of the unprefixed name is not read.
import { createMaestrano, memoryAdapter } from '@org/maestrano-sdk';
import { createTestIdp } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';

const idp = createTestIdp();

function app(appHost: string) {
  const logins: string[] = [];
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: 'acme', appHost, apiId: 'app-1', apiKey: 'key-1-0123456789' })],
    storage: memoryAdapter(),
    provisioning: { createCompany: (g) => ({ id: `co-${g.uid}` }), createUser: (u) => ({ id: `us-${u.key}` }) },
    onLogin: ({ user }) => {
      logins.push(user.id);
      return new Response('in');
    },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  const init = async () => {
    const res = await mno.handler(new Request(mno.sso.initUrl('acme', { groupId: 'cld-1' })));
    expect(res.status).toBe(302);
    const [setCookie] = res.headers.getSetCookie();
    return { setCookie: setCookie ?? '', pair: (setCookie ?? '').split(';')[0] ?? '', location: res.headers.get('location') ?? '' };
  };
  const consume = async (location: string, cookie: string) => {
    const { samlResponse, acsUrl } = idp.respondTo(location, { uid: 'usr-attacker', email: 'attacker@example.com', groupUid: 'cld-1' });
    return mno.handler(new Request(acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: samlResponse }), headers: { cookie } }));
  };
  return { init, consume, logins };
}

describe('the request-binding cookie over https', () => {
  it('is a __Host- cookie: Secure, Path=/, no Domain; the login completes with it', async () => {
    const a = app('https://app.example.com');
    const started = await a.init();
    expect(started.pair).toMatch(/^__Host-mno_sso_req_acme=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const flags = started.setCookie.split('; ').slice(1);
    expect(flags).toEqual(expect.arrayContaining(['Path=/', 'Secure', 'HttpOnly']));
    expect(flags.some((f) => /^domain=/i.test(f))).toBe(false);
    const res = await a.consume(started.location, started.pair);
    expect(res.status).toBe(200);
    expect(a.logins).toHaveLength(1);
    // The used request is cleared under the same name.
    expect(res.headers.getSetCookie().some((c) => c.startsWith('__Host-mno_sso_req_acme=;'))).toBe(true);
  });

  it('a binding planted under the unprefixed name (what a sibling subdomain can set) is not read', async () => {
    const a = app('https://app.example.com');
    const attacker = await a.init();
    const tossed = attacker.pair.replace(/^__Host-/, '');
    const res = await a.consume(attacker.location, tossed);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(a.logins).toEqual([]);
  });

  it('over plain http (local development) the cookie keeps its unprefixed name, which browsers would refuse as __Host-', async () => {
    const a = app('http://127.0.0.1:3000');
    const started = await a.init();
    expect(started.pair).toMatch(/^mno_sso_req_acme=/);
    expect(started.setCookie).not.toContain('Secure');
    expect((await a.consume(started.location, started.pair)).status).toBe(200);
  });
});
