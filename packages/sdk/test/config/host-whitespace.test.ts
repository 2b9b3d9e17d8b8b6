/**
 * Hosts with surrounding whitespace (a CRLF env file, a YAML block scalar, a secret mounted as a
 * file) are trimmed at configuration time: SSO works with them as with the clean value. They
 * were kept as written: SSO init answered 500, and the ACS URL carried the newline.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMaestrano, type Logger, memoryAdapter, type MarketplaceInput, toNodeListener } from '@org/maestrano-sdk';
import { createTestIdp } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const idp = createTestIdp();
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
let server: Server;
let baseUrl = '';
let handler: (request: Request) => Promise<Response> = async () => new Response(null, { status: 503 });
beforeAll(async () => {
  server = createServer((req, res) => void toNodeListener((request) => handler(request))(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Serves one marketplace `mkt` (the test IdP's), edited by `patch`. */
function serve(patch: (m: MarketplaceInput) => void): void {
  const m = idp.marketplace({ name: 'mkt', appHost: baseUrl, apiId: 'app-1', apiKey: 'key-1' });
  patch(m);
  const mno = createMaestrano({
    tenants: [m],
    storage: memoryAdapter(),
    provisioning: { createCompany: async () => ({ id: 'c' }), createUser: async () => ({ id: 'u' }) },
    onLogin: () => new Response('ok'),
    logger: quiet,
  });
  handler = mno.handler;
}

describe('hosts with surrounding whitespace', () => {
  it('api.host and sso.idp with a trailing space: SSO init redirects to the IdP (it answered 500)', async () => {
    serve((m) => {
      m.api.host = `${m.api.host} `;
      m.sso = { ...m.sso, idp: `${m.sso?.idp ?? m.api.host} ` };
    });
    const res = await fetch(`${baseUrl}/maestrano/auth/saml/init/mkt`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).not.toMatch(/\s|%20/);
  });

  it('app.host with a trailing newline: the ACS URL is the clean one and a login through the IdP succeeds', async () => {
    serve((m) => {
      m.app.host = `${m.app.host}\n`;
    });
    const init = await fetch(`${baseUrl}/maestrano/auth/saml/init/mkt?group_id=cld-1`, { redirect: 'manual' });
    expect(init.status).toBe(302);
    const cookie = init.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const location = init.headers.get('location')!;
    const acs = `${baseUrl}/maestrano/auth/saml/consume/mkt`;
    expect(idp.parseAuthnRequest(location).acsUrl).toBe(acs);
    // A real IdP/browser posts to the URL as parsed and names it as Recipient/Destination.
    const { samlResponse } = idp.respondTo(location, { uid: 'usr-1', email: 'a@b.c', groupUid: 'cld-1' }, { recipient: acs, destination: acs });
    const res = await fetch(acs, { method: 'POST', body: new URLSearchParams({ SAMLResponse: samlResponse }), headers: { cookie }, redirect: 'manual' });
    expect({ status: res.status, body: await res.text() }).toEqual({ status: 200, body: 'ok' });
  });
});
