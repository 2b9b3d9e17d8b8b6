// One deployment serving hundreds of marketplaces: the SAML validator keeps what it builds for
// each marketplace (node-saml's `SAML` object for the pinned certificate), not in one cache of
// 64 entries for all, which with more marketplaces logging in was emptied over and over: every
// login then built its marketplace's objects again. Counted on node-saml's own constructor path
// (`SAML.prototype.initialize`, which `new SAML(...)` calls).
import { parseMarketplacesDocument } from '@org/maestrano-sdk';
import { ResponseValidator } from '@org/maestrano-sdk/sso';
import { SAML } from '@node-saml/node-saml';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { testIdp } from './harness.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('SAML validation across many marketplaces', () => {
  it('builds the SAML objects of each marketplace once, however many marketplaces log in', async () => {
    const idp = testIdp();
    const count = 80;
    const base = 'https://app.example.com';
    const tenants = parseMarketplacesDocument(
      { marketplaces: Array.from({ length: count }, (_, i) => idp.marketplace({ name: `mkt-${i}`, appHost: base, apiId: `app-${i}`, apiKey: `key-${i}` })) },
      'maestrano.json',
    );
    const validator = new ResponseValidator({ clockSkewMs: 60_000, audiences: [] });
    const now = new Date();
    const responses = tenants.map((tenant, i) =>
      idp.response({ uid: `usr-${i}`, email: `u${i}@example.com`, groupUid: `cld-${i}` }, { acsUrl: `${base}${tenant.sso.consumePath}`, now }),
    );
    const built = vi.spyOn(SAML.prototype, 'initialize');
    // One login per marketplace, then again for the first ten (long evicted from a cache of 64).
    for (const [i, tenant] of [...tenants.entries(), ...tenants.slice(0, 10).entries()]) {
      const assertion = await validator.validate(tenant, responses[i]!, now);
      expect(assertion.nameId).toBe(`usr-${i}`);
    }
    expect(built).toHaveBeenCalledTimes(count);
  });
});
