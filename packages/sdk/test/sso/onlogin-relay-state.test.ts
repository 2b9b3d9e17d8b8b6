// `onLogin` gets the ACS request with a body it can read again, the `RelayState` the IdP
// posted back next to `SAMLResponse` (the usual return-to parameter), and `returnTo`: that
// value as a path of the app's own origin, or null when it would lead elsewhere (it is not
// signed). Real SP-initiated login through mno.handler on a loopback server.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMaestrano, memoryAdapter, safeReturnPath, toNodeListener } from '@org/maestrano-sdk';
import { createTestIdp } from '@org/maestrano-sdk/testing';
import { afterAll, describe, expect, it } from 'vitest';

const idp = createTestIdp();
let server: Server | undefined;
afterAll(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

it('onLogin reads the posted form (request.formData) and gets relayState', async () => {
  let handler: (r: Request) => Promise<Response> = async () => new Response(null, { status: 503 });
  server = createServer(toNodeListener((r) => handler(r)));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const seen: { fromForm?: unknown; relayState?: string | null; returnTo?: string | null; error?: string }[] = [];
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: 't1', appHost: url, apiId: 'app-1', apiKey: 'key-1-0123456789' })],
    storage: memoryAdapter(),
    provisioning: { createCompany: (g) => ({ id: `co-${g.uid}` }), createUser: (u) => ({ id: `us-${u.key}` }) },
    onLogin: async ({ request, relayState, returnTo }) => {
      try {
        seen.push({ fromForm: (await request.formData()).get('RelayState'), relayState, returnTo });
      } catch (error) {
        seen.push({ error: String(error) });
      }
      return new Response(null, { status: 303, headers: { location: returnTo ?? '/' } });
    },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;

  const login = async (relayState: string | null) => {
    const init = await fetch(`${url}/maestrano/auth/saml/init/t1?group_id=cld-1`, { redirect: 'manual' });
    await init.arrayBuffer();
    const cookie = init.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const { samlResponse } = idp.respondTo(init.headers.get('location') ?? '', { uid: 'usr-1', email: 'a@example.com', groupUid: 'cld-1' });
    const body = new URLSearchParams({ SAMLResponse: samlResponse });
    if (relayState !== null) body.set('RelayState', relayState);
    const res = await fetch(`${url}/maestrano/auth/saml/consume/t1`, { method: 'POST', body, headers: { cookie }, redirect: 'manual' });
    await res.arrayBuffer();
    return res;
  };
  const first = await login('/contacts/42');
  expect(first.status).toBe(303);
  expect(first.headers.get('location')).toBe('/contacts/42');
  const second = await login(null);
  expect(second.headers.get('location')).toBe('/');
  // A tab is dropped by browsers when they parse a URL: `/\t/evil.example` would be `//evil.example`.
  const third = await login('/\t/evil.example/phish');
  expect(third.headers.get('location')).toBe('/');
  expect(seen).toEqual([
    { fromForm: '/contacts/42', relayState: '/contacts/42', returnTo: '/contacts/42' },
    { fromForm: null, relayState: null, returnTo: null },
    { fromForm: '/\t/evil.example/phish', relayState: '/\t/evil.example/phish', returnTo: null },
  ]);
});

describe('safeReturnPath', () => {
  const origin = 'https://app.example.com';
  it('keeps paths of the origin, normalised', () => {
    expect(safeReturnPath('/contacts/42?tab=notes#top', origin)).toBe('/contacts/42?tab=notes#top');
    expect(safeReturnPath('/a/../b/./c', origin)).toBe('/b/c');
    expect(safeReturnPath('/%2F%2Fevil.example', origin)).toBe('/%2F%2Fevil.example');
  });
  it('refuses anything that could lead elsewhere', () => {
    for (const value of [
      null,
      undefined,
      '',
      'contacts',
      'https://evil.example/',
      '//evil.example',
      '/\\evil.example',
      '/\t/evil.example',
      '/\n/evil.example',
      ' /contacts',
      '/\u0000x',
      'javascript:alert(1)',
      // Dot segments that normalise to `//host`.
      '/.//evil.example/phish',
      '/..//evil.example',
      '/a/..//evil.example',
      '/%2e//evil.example',
      `/${'a'.repeat(3000)}`,
    ]) {
      expect(safeReturnPath(value, origin), String(value)).toBeNull();
    }
  });
});
