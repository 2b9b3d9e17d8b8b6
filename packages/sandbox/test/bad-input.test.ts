import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { basic } from './helpers.js';

type Obj = Record<string, unknown>;

/** Bad input is answered with a typed 4xx, never a 500 nor a stored record that breaks the rules. */
describe('bad input', () => {
  let sb: Sandbox;
  let auth: string;
  let groupId: string;

  beforeAll(async () => {
    sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9' });
    const m = sb.credentials.marketplaces[0];
    if (!m) throw new Error('marketplace');
    auth = basic(m.apiId, m.apiKey);
    groupId = (await sb.admin.createGroup({ name: 'Acme' })).id;
  });
  afterAll(() => sb.stop());

  it('recurring bills - a period named after an Object.prototype member (constructor, __proto__) is refused, not stored', async () => {
    for (const period of ['constructor', '__proto__', 'hasOwnProperty', 'valueOf']) {
      const res = await fetch(`${sb.url}/api/v1/account/recurring_bills`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ group_id: groupId, price_cents: 100, description: 'Plan', period }),
      });
      const body = (await res.json()) as { success: boolean; errors: Obj; data: Obj };
      expect({ period, status: res.status }).toEqual({ period, status: 400 });
      expect(body.success).toBe(false);
      expect(body.errors.period).toBeDefined();
    }
    expect(await sb.admin.listRecurringBills(groupId)).toEqual([]);
  });

  it('batch - an op whose url does not parse gets its own 400; the other ops still run', async () => {
    const res = await fetch(`${sb.url}/batch`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        ops: [
          { method: 'post', url: 'http://', params: { people: { first_name: 'Bad' } } },
          { method: 'post', url: `/api/v2/${groupId}/people/`, params: { people: { first_name: 'Good', last_name: 'One' } } },
        ],
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { results: Array<{ status: number; body: Obj }> };
    expect(body.results.map((r) => r.status)).toEqual([400, 201]);
  });

  it('admin sso/login - an authnRequestUrl that does not parse is a 400 of the admin API', async () => {
    const user = await sb.admin.createUser({ memberships: [{ groupId }] });
    const res = await fetch(`${sb.url}/__admin/sso/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: user.id, authnRequestUrl: 'http://' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: Obj }).error.field).toBe('authnRequestUrl');
  });

  it('form bodies - a Rack-style `__proto__[x]` key does not reach Object.prototype (Account API and admin API)', async () => {
    const probe = {} as Obj;
    try {
      const account = await fetch(`${sb.url}/api/v1/account/bills`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
        body: `group_id=${groupId}&price_cents=100&description=x&__proto__[pollutedByAccount]=yes`,
      });
      expect(account.status).toBe(200);
      const admin = await fetch(`${sb.url}/__admin/groups`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'name=Form&__proto__[pollutedByAdmin]=yes',
      });
      expect(admin.status).toBe(201);
      expect(probe.pollutedByAccount).toBeUndefined();
      expect(probe.pollutedByAdmin).toBeUndefined();
    } finally {
      delete (Object.prototype as Obj).pollutedByAccount;
      delete (Object.prototype as Obj).pollutedByAdmin;
    }
  });
});
