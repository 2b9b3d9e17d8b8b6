// Two marketplaces configuring the same consume path without naming the marketplace share one
// ACS URL: the router answers it 404 ambiguous_tenant, but also serves the legacy aliases
// `<path>/<tenant>`. A response names only the shared ACS (Recipient, Destination, the origin
// as audience), so posted at an alias it was accepted for whichever marketplace the attacker
// picked, and, replay records being per marketplace, once at each: one (IdP-initiated)
// assertion logged its user into both marketplaces. A response is only accepted at the ACS path
// it names.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness, testIdp } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    sso: { allowIdpInitiated: true },
    extraTenants: (base) => [
      testIdp().marketplace({ name: 'ta', appHost: base, apiId: 'app-a', apiKey: 'key-a', sso: { consume_path: '/shared/consume' } }),
      testIdp().marketplace({ name: 'tb', appHost: base, apiId: 'app-b', apiKey: 'key-b', sso: { consume_path: '/shared/consume' } }),
      testIdp().marketplace({ name: 'solo', appHost: base, apiId: 'app-solo', apiKey: 'key-solo', sso: { consume_path: '/solo/consume' } }),
    ],
  });
});
afterAll(async () => {
  await h.close();
});

const postAt = async (path: string, samlResponse: string) => {
  const res = await fetch(`${h.baseUrl}${path}`, { method: 'POST', body: new URLSearchParams({ SAMLResponse: samlResponse }), redirect: 'manual' });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('a response for a consume path two marketplaces share', () => {
  it('is accepted for neither marketplace through the `<path>/<tenant>` aliases (no cross-tenant replay)', async () => {
    const user = { uid: 'usr-shared', email: 'shared@doecorp.com', groupUid: 'cld-shared' };
    const response = h.idp.response(user, { acsUrl: `${h.baseUrl}/shared/consume` });
    expect((await postAt('/shared/consume', response)).body['error']).toBe('ambiguous_tenant');
    for (const tenant of ['ta', 'tb']) {
      const answer = await postAt(`/shared/consume/${tenant}`, response);
      expect({ status: answer.status, error: answer.body['error'] }).toEqual({ status: 400, error: 'recipient' });
    }
    expect(h.logins).toHaveLength(0);
    expect(h.app.count('createUser')).toBe(0);
  });

  it('control: a marketplace alone on its bare consume path still signs in there, and the default layout too', async () => {
    const user = { uid: 'usr-solo', email: 'solo@doecorp.com', groupUid: 'cld-solo' };
    const answer = await postAt('/solo/consume', h.idp.response(user, { acsUrl: `${h.baseUrl}/solo/consume` }));
    expect({ status: answer.status, uid: answer.body['uid'] }).toEqual({ status: 200, uid: 'usr-solo' });
    const second = await h.login({ uid: 'usr-default', email: 'default@doecorp.com', groupUid: 'cld-default' });
    expect({ status: second.status, uid: second.body['uid'] }).toEqual({ status: 200, uid: 'usr-default' });
    expect(h.logins.map((l) => [l.tenant.name, l.user.uid])).toEqual([
      ['solo', 'usr-solo'],
      ['maestrano-test', 'usr-default'],
    ]);
  });
});
