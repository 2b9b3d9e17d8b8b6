/**
 * The request-binding cookie is per tenant: tenants whose names differ only in characters a
 * cookie name cannot hold (`acme.eu`, `acme_eu`) get different cookies, so one browser can
 * start a login on each and finish both.
 */
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness, testIdp } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    extraTenants: (baseUrl) =>
      ['acme.eu', 'acme_eu', 'acme~eu'].map((name, i) =>
        testIdp().marketplace({ name, appHost: baseUrl, apiId: `app-acme-${i}`, apiKey: `acme-key-${i}-xxxxxxxx` }),
      ),
  });
});
afterAll(async () => {
  await h.close();
});

/** A browser's cookie jar: a later cookie of the same name replaces the earlier one. */
class Jar {
  readonly #cookies = new Map<string, string>();
  store(pairs: string): void {
    for (const pair of pairs.split('; ').filter(Boolean)) {
      const eq = pair.indexOf('=');
      this.#cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
  }
  names(): string[] {
    return [...this.#cookies.keys()];
  }
  header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

const user: TestUser = { uid: 'usr-1', email: 'one@acme.example', groupUid: 'cld-1' };

describe('request-binding cookie names', () => {
  it('acme.eu, acme_eu and acme~eu: three cookies in one browser, and each login completes', async () => {
    const jar = new Jar();
    const started = [];
    for (const tenant of ['acme.eu', 'acme_eu', 'acme~eu']) {
      const init = await h.init(tenant, '?group_id=cld-1');
      expect(init.status).toBe(302);
      jar.store(init.cookie);
      started.push({ tenant, location: init.location });
    }
    expect(jar.names()).toEqual(['mno_sso_req_acme_2eeu', 'mno_sso_req_acme_5feu', 'mno_sso_req_acme_7eeu']);
    for (const name of jar.names()) expect(name).toMatch(/^[A-Za-z0-9_-]+$/);

    // The first login started is finished last: its cookie must have survived the others.
    for (const { tenant, location } of started.reverse()) {
      const { samlResponse } = h.idp.respondTo(location, user);
      const res = await h.post(samlResponse, { tenant, cookie: jar.header() });
      expect(res.status, `${tenant}: ${JSON.stringify(res.body)}`).toBe(200);
      expect(res.body['session']).toMatchObject({ tenant, uid: 'usr-1' });
      expect((await h.storage.users.get(tenant, 'usr-1'))?.userId).toBe(res.body['userId']);
      expect((await h.storage.groups.get(tenant, 'cld-1'))?.companyId).toBe(res.body['companyId']);
    }
  });

  it('a tenant name of letters, digits and dashes keeps its readable cookie name', async () => {
    const init = await h.init(h.tenant, '?group_id=cld-1');
    expect(init.cookie).toMatch(/^mno_sso_req_maestrano-test=/);
  });
});
