// The SDK's init route takes the page to come back to from the app (`return_to`, what
// `mno.sso.initUrl(tenant, { returnTo })` sets, or `RelayState`) and sends it to the IdP as the
// AuthnRequest redirect's `RelayState` (HTTP-Redirect binding), which the IdP posts back to the
// ACS: `onLogin` gets it as `returnTo`. A value that is not a path of the app's origin, or that
// does not fit the binding's 80 bytes, is dropped (logged, never echoed) and the login goes on.
import { createMaestrano, memoryAdapter } from '@org/maestrano-sdk';
import { createTestIdp } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';

const idp = createTestIdp();
const APP = 'https://app.example.com';

function start() {
  const infos: { message: string; fields: Record<string, unknown> }[] = [];
  const logins: { relayState: string | null; returnTo: string | null }[] = [];
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: 'acme', appHost: APP, apiId: 'app-1', apiKey: 'key-1-0123456789' })],
    storage: memoryAdapter(),
    provisioning: { createCompany: (g) => ({ id: `co-${g.uid}` }), createUser: (u) => ({ id: `us-${u.key}` }) },
    onLogin: ({ relayState, returnTo }) => {
      logins.push({ relayState, returnTo });
      return new Response(null, { status: 303, headers: { location: returnTo ?? '/' } });
    },
    logger: { debug() {}, info: (message, fields = {}) => void infos.push({ message, fields }), warn() {}, error() {} },
  });
  /**
   * The init route's redirect, then the IdP's answer posted back with the RelayState it got
   * (or without it: `postRelayState: false`, an IdP whose form only carries `SAMLResponse`).
   */
  const login = async (initUrl: string, { postRelayState = true } = {}) => {
    const init = await mno.handler(new Request(initUrl));
    expect(init.status).toBe(302);
    const location = init.headers.get('location') ?? '';
    const cookie = init.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const relayState = new URL(location).searchParams.get('RelayState');
    const { samlResponse, acsUrl } = idp.respondTo(location, { uid: 'usr-1', email: 'a@example.com', groupUid: 'cld-1' });
    const body = new URLSearchParams({ SAMLResponse: samlResponse });
    if (relayState !== null && postRelayState) body.set('RelayState', relayState);
    const res = await mno.handler(new Request(acsUrl, { method: 'POST', body, headers: { cookie } }));
    return { relayState, status: res.status, location: res.headers.get('location') };
  };
  return { mno, infos, logins, login };
}

describe('a return path through the SDK init route', () => {
  it('mno.sso.initUrl(tenant, { returnTo }) brings the user back to it', async () => {
    const { mno, login, logins } = start();
    const url = mno.sso.initUrl('acme', { groupId: 'cld-1', returnTo: '/contacts/42?tab=notes' });
    expect(url).toBe(`${APP}/maestrano/auth/saml/init/acme?group_id=cld-1&return_to=%2Fcontacts%2F42%3Ftab%3Dnotes`);
    expect(await login(url)).toEqual({ relayState: '/contacts/42?tab=notes', status: 303, location: '/contacts/42?tab=notes' });
    expect(logins).toEqual([{ relayState: '/contacts/42?tab=notes', returnTo: '/contacts/42?tab=notes' }]);
  });

  it('brings the user back also when the IdP does not post RelayState back (the signed request cookie keeps the path)', async () => {
    const { mno, login, logins } = start();
    const url = mno.sso.initUrl('acme', { groupId: 'cld-1', returnTo: '/contacts/42?tab=notes' });
    expect(await login(url, { postRelayState: false })).toEqual({ relayState: '/contacts/42?tab=notes', status: 303, location: '/contacts/42?tab=notes' });
    expect(logins).toEqual([{ relayState: null, returnTo: '/contacts/42?tab=notes' }]);
  });

  it('accepts the SAML name RelayState too, and sends the normalised path', async () => {
    const { login } = start();
    const res = await login(`${APP}/maestrano/auth/saml/init/acme?RelayState=${encodeURIComponent('/a/../contacts/./42')}`);
    expect(res).toEqual({ relayState: '/contacts/42', status: 303, location: '/contacts/42' });
  });

  it('drops a value leading elsewhere, logs why (not the value), and still logs the user in', async () => {
    const { mno, login, infos, logins } = start();
    for (const value of ['https://evil.example/phish', '//evil.example', '/\t/evil.example']) {
      expect(await login(mno.sso.initUrl('acme', { returnTo: value }))).toEqual({ relayState: null, status: 303, location: '/' });
    }
    expect(logins.map((l) => l.returnTo)).toEqual([null, null, null]);
    const dropped = infos.filter((i) => i.message.includes('return path not forwarded'));
    expect(dropped.map((i) => i.fields)).toEqual(
      Array(3).fill({ tenant: 'acme', reason: "return_to is not a path of the app's origin" }),
    );
    expect(JSON.stringify(dropped)).not.toContain('evil');
  });

  it('forwards up to the 80 bytes of the SAML binding, and drops a longer one', async () => {
    const { mno, login, infos } = start();
    const fits = `/${'a'.repeat(79)}`;
    expect((await login(mno.sso.initUrl('acme', { returnTo: fits }))).relayState).toBe(fits);
    // Non-ASCII is sent percent-encoded: its bytes count, not its characters.
    const long = `/${'é'.repeat(20)}`;
    expect(await login(mno.sso.initUrl('acme', { returnTo: long }))).toEqual({ relayState: null, status: 303, location: '/' });
    expect(infos.filter((i) => i.message.includes('return path not forwarded')).map((i) => i.fields)).toEqual([
      { tenant: 'acme', reason: 'return_to is longer than the 80 bytes a SAML RelayState may hold' },
    ]);
  });

  it('sends no RelayState without a return path', async () => {
    const { mno, login, infos } = start();
    expect(await login(mno.sso.initUrl('acme', { groupId: 'cld-1' }))).toEqual({ relayState: null, status: 303, location: '/' });
    expect(infos.filter((i) => i.message.includes('return path'))).toEqual([]);
  });
});
