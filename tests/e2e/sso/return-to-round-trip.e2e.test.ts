/**
 * `onLogin({ returnTo })` after an SP-initiated login through the SDK's own init route, with the
 * sandbox as the IdP (it posts back the `RelayState` it got, as Maestrano's IdP does): the app
 * sends a signed-out visitor to the init route with the page to come back to (`return_to`, what
 * `mno.sso.initUrl(tenant, { returnTo })` sets, or `RelayState`), the init route forwards it to
 * the IdP as the AuthnRequest redirect's `RelayState` (HTTP-Redirect binding), and the ACS hands
 * it to `onLogin` as `returnTo`.
 */
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type E2eHarness, pgUnavailableReason, startE2e, startLogin } from './harness.js';

const unavailable = await pgUnavailableReason();
// In CI a missing PostgreSQL is a failure; elsewhere the skip says why.
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);
if (unavailable) console.warn(`[e2e/sso] returnTo round-trip tests skipped: ${unavailable}`);
const TENANT = 'sbx-return';
let sandbox: Sandbox;
let h: E2eHarness;

describe.skipIf(unavailable !== null)('returnTo through an SP-initiated login', () => {
  beforeAll(async () => {
    h = await startE2e({
      tenants: async (appUrl) => {
        sandbox = await startSandbox({ port: 0, appUrl, marketplaces: [TENANT] });
        return tenantsFromDevPlatform({ host: sandbox.url, key: sandbox.credentials.environment.apiKey, secret: sandbox.credentials.environment.apiSecret, refreshMs: 0 });
      },
      onClose: async () => {
        await sandbox?.stop();
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('brings the user back to the page they asked for', async () => {
    const group = await sandbox.admin.createGroup({ name: 'Return Corp', marketplace: TENANT });
    const user = await sandbox.admin.createUser({ name: 'Ret', surname: 'Urn', email: 'ret@sandbox.example', memberships: [{ groupId: group.id, role: 'Admin' }] });
    // The app sends a signed-out visitor of /contacts/42 to the SDK's init route with the page to come back to.
    const started = await startLogin(`${h.appUrl}/maestrano/auth/saml/init/${TENANT}?group_id=${group.id}&RelayState=${encodeURIComponent('/contacts/42')}`);
    const login = await sandbox.admin.ssoLogin({ authnRequestUrl: started.location, userId: user.id });
    // What the IdP's auto-post form sends.
    const body = new URLSearchParams({ SAMLResponse: login.samlResponse });
    if (login.relayState !== null) body.set('RelayState', login.relayState);
    const res = await fetch(login.acsUrl, { method: 'POST', body, headers: { cookie: started.cookie }, redirect: 'manual' });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(h.logins.at(-1)?.returnTo).toBe('/contacts/42');
  });

  it('does the same for the URL mno.sso.initUrl(tenant, { returnTo }) builds', async () => {
    const group = await sandbox.admin.createGroup({ name: 'Init Url Corp', marketplace: TENANT });
    const user = await sandbox.admin.createUser({ name: 'Ini', surname: 'Turl', email: 'initurl@sandbox.example', memberships: [{ groupId: group.id, role: 'Admin' }] });
    const started = await startLogin(h.mno.sso.initUrl(TENANT, { groupId: group.id, returnTo: '/invoices?status=due' }));
    const login = await sandbox.admin.ssoLogin({ authnRequestUrl: started.location, userId: user.id });
    expect(login.relayState).toBe('/invoices?status=due');
    const body = new URLSearchParams({ SAMLResponse: login.samlResponse, RelayState: login.relayState ?? '' });
    const res = await fetch(login.acsUrl, { method: 'POST', body, headers: { cookie: started.cookie }, redirect: 'manual' });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(h.logins.at(-1)?.returnTo).toBe('/invoices?status=due');
  });
});
