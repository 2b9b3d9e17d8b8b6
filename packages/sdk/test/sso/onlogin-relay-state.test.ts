// `onLogin` gets the ACS request with a body it can read again, and the `RelayState` the IdP
// posted back next to `SAMLResponse` (the usual return-to parameter). Real SP-initiated login
// through mno.handler on a loopback server.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMaestrano, memoryAdapter, toNodeListener } from '@org/maestrano-sdk';
import { createTestIdp } from '@org/maestrano-sdk/testing';
import { afterAll, expect, it } from 'vitest';

const idp = createTestIdp();
let server: Server | undefined;
afterAll(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

it('onLogin reads the posted form (request.formData) and gets relayState', async () => {
  let handler: (r: Request) => Promise<Response> = async () => new Response(null, { status: 503 });
  server = createServer(toNodeListener((r) => handler(r)));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const seen: { fromForm?: unknown; relayState?: string | null; error?: string }[] = [];
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: 't1', appHost: url, apiId: 'app-1', apiKey: 'key-1-0123456789' })],
    storage: memoryAdapter(),
    provisioning: { createCompany: (g) => ({ id: `co-${g.uid}` }), createUser: (u) => ({ id: `us-${u.key}` }) },
    onLogin: async ({ request, relayState }) => {
      try {
        seen.push({ fromForm: (await request.formData()).get('RelayState'), relayState });
      } catch (error) {
        seen.push({ error: String(error) });
      }
      return new Response(null, { status: 303, headers: { location: relayState?.startsWith('/') ? relayState : '/' } });
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
  expect(seen).toEqual([
    { fromForm: '/contacts/42', relayState: '/contacts/42' },
    { fromForm: null, relayState: null },
  ]);
});
