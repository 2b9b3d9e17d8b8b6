import { createCipheriv, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { type AdminBill, type AdminRecurringBill, type Sandbox, startSandbox } from '../src/index.js';
import { basic } from './helpers.js';

interface Envelope<T = unknown> {
  success: boolean;
  errors: Record<string, string[]>;
  data: T;
}
type Obj = Record<string, unknown>;

describe('Account API (PROTOCOL §4)', () => {
  let sb: Sandbox;
  let auth: string;
  let otherAuth: string;
  let groupId: string;
  let otherGroup: string;
  let userId: string;

  const call = async <T = unknown>(method: string, path: string, body?: Obj | string, headers: Record<string, string> = {}, authz = auth) => {
    const isForm = typeof body === 'string';
    const res = await fetch(`${sb.url}/api/v1/${path}`, {
      method,
      headers: { authorization: authz, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': isForm ? 'application/x-www-form-urlencoded' : 'application/json' }), ...headers },
      body: body === undefined ? undefined : isForm ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Envelope<T> };
  };

  beforeAll(async () => {
    sb = await startSandbox({ port: 0, appUrl: 'http://localhost:3000', marketplaces: ['one', 'two'] });
    const [m1, m2] = sb.credentials.marketplaces;
    if (!m1 || !m2) throw new Error('marketplaces');
    auth = basic(m1.apiId, m1.apiKey);
    otherAuth = basic(m2.apiId, m2.apiKey);
    groupId = (await sb.admin.createGroup({ marketplace: 'one', name: 'Acme', currency: 'USD' })).id;
    await sb.admin.createGroup({ marketplace: 'one', name: 'Zeta', currency: 'AUD' });
    otherGroup = (await sb.admin.createGroup({ marketplace: 'two', name: 'Other' })).id;
    userId = (await sb.admin.createUser({ name: 'Ann', email: 'ann@example.com', password: 's3cret!', memberships: [{ groupId, role: 'Admin' }] })).id;
  });
  afterAll(() => sb.stop());

  it('auth - missing or wrong credentials answer 401 with the authentication error', async () => {
    const res = await call('GET', 'account/groups', undefined, {}, basic('app-x', 'nope'));
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ success: false, errors: { authentication: ['Invalid API token'] }, data: {} });
    const none = await fetch(`${sb.url}/api/v1/account/bills`);
    expect(none.status).toBe(401);
  });

  it('ping - answers inside the envelope', async () => {
    const res = await call('GET', 'ping');
    expect(res.body).toEqual({ success: true, errors: {}, data: { msg: 'Ping successful! (API Authentication successful)' } });
  });

  it('groups - list only the app marketplace groups, retrieve, filter with equality and suffixes; unknown filters give []', async () => {
    const list = await call<Obj[]>('GET', 'account/groups');
    expect(list.status).toBe(200);
    expect(list.body.success).toBe(true);
    expect(list.body.data.map((g) => g.name).sort()).toEqual(['Acme', 'Zeta']);
    expect(list.body.data.every((g) => g.object === 'account_group')).toBe(true);
    const one = await call<Obj>('GET', `account/groups/${groupId}`);
    expect(one.body.data).toMatchObject({ object: 'account_group', id: groupId, name: 'Acme', currency: 'USD', status: 'running' });
    expect(Object.keys(one.body.data)).toEqual(expect.arrayContaining(['email', 'has_credit_card', 'free_trial_end_at', 'country', 'city', 'timezone', 'main_accounting', 'metadata', 'created_at', 'updated_at']));
    const usd = await call<Obj[]>('GET', 'account/groups?currency=USD');
    expect(usd.body.data.map((g) => g.id)).toEqual([groupId]);
    const past = await call<Obj[]>('GET', 'account/groups?created_at_after=2000-01-01T00:00:00Z');
    expect(past.body.data).toHaveLength(2);
    const future = await call<Obj[]>('GET', 'account/groups?created_at_strictly_after=2999-01-01T00:00:00Z');
    expect(future.body.data).toHaveLength(0);
    const unknown = await call<Obj[]>('GET', 'account/groups?colour=blue');
    expect(unknown.body).toEqual({ success: true, errors: {}, data: [] });
    const foreign = await call<Obj>('GET', `account/groups/${otherGroup}`);
    expect(foreign.status).toBe(200);
    expect(foreign.body).toEqual({ success: false, errors: { id: ['does not exist'] }, data: {} });
  });

  it('users - list by group, retrieve, and the encrypted password check', async () => {
    const list = await call<Obj[]>('GET', `account/users?group_id=${groupId}`);
    expect(list.body.data.map((u) => u.id)).toEqual([userId]);
    const user = await call<Obj>('GET', `account/users/${userId}`);
    expect(user.body.data).toMatchObject({ object: 'account_user', id: userId, name: 'Ann', email: 'ann@example.com' });
    const m1 = sb.credentials.marketplaces[0];
    if (!m1) throw new Error('m1');
    const encrypt = (password: string) => {
      const iv = randomBytes(16);
      const cipher = createCipheriv('aes-256-cbc', Buffer.from(m1.apiKey).subarray(0, 32), iv);
      return `${iv.toString('base64')}--${Buffer.concat([cipher.update(password, 'utf8'), cipher.final()]).toString('base64')}`;
    };
    const ok = await call<Obj>('POST', 'account/users/authenticate', { email: 'ann@example.com', password: encrypt('s3cret!') });
    expect(ok.body).toMatchObject({ success: true, data: { id: userId } });
    const bad = await call('POST', 'account/users/authenticate', { id: userId, password: encrypt('wrong') });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual({ password: ['invalid password or non existing user'] });
  });

  it('bills - create (JSON and form), list with filters, retrieve, cancel; invoiced bills cannot be cancelled', async () => {
    const created = await call<Obj>('POST', 'account/bills', { group_id: groupId, price_cents: 2300, description: 'Setup fee', period_started_at: '2026-01-01T00:00:00Z', period_ended_at: '2026-01-31T00:00:00Z', third_party: true });
    expect(created.status).toBe(200);
    expect(created.body.data).toMatchObject({ object: 'account_bill', group_id: groupId, price_cents: 2300, currency: 'AUD', units: 1, status: 'submitted', third_party: true, period_started_at: '2026-01-01T00:00:00.000Z' });
    const billId = String(created.body.data.id);
    expect(billId).toMatch(/^bill-/);
    const form = await call<Obj>('POST', 'account/bills', `group_id=${groupId}&price_cents=990&description=SMS+credits&units=2.5&currency=usd`);
    expect(form.body.data).toMatchObject({ price_cents: 990, units: 2.5, currency: 'USD' });
    const formId = String(form.body.data.id);
    const rack = await call<Obj>('POST', 'account/bills', `bill[group_id]=${groupId}&bill[price_cents]=50&bill[description]=Rack+style`);
    expect(rack.body.data).toMatchObject({ price_cents: 50, description: 'Rack style' });
    const list = await call<Obj[]>('GET', `account/bills?group_id=${groupId}&price_cents_greater_than=1000`);
    expect(list.body.data.map((b) => b.id)).toEqual([billId]);
    const got = await call<Obj>('GET', `account/bills/${billId}`);
    expect(got.body.data.id).toBe(billId);
    const cancelled = await call<Obj>('DELETE', `account/bills/${billId}`);
    expect(cancelled.body).toMatchObject({ success: true, data: { id: billId, status: 'cancelled' } });
    await sb.admin.invoiceBill(formId);
    const refused = await call('DELETE', `account/bills/${formId}`);
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({ success: false, errors: { status: ['has already been set to invoiced and cannot be changed'] }, data: {} });
    expect((await call<Obj>('GET', `account/bills/${formId}`)).body.data.status).toBe('invoiced');
    const submitted = await call<Obj[]>('GET', 'account/bills?status=cancelled');
    expect(submitted.body.data.map((b) => b.id)).toEqual([billId]);
    const missing = await call('DELETE', 'account/bills/bill-nope');
    expect(missing.status).toBe(400);
    expect(missing.body.errors).toEqual({ id: ['does not exist'] });
  });

  it('bills - validation errors and foreign groups answer 400 and store nothing', async () => {
    const before = (await sb.admin.listBills()).length;
    const invalid = await call('POST', 'account/bills', { group_id: groupId, price_cents: -5, units: 0 });
    expect(invalid.status).toBe(400);
    expect(invalid.body.success).toBe(false);
    expect(Object.keys(invalid.body.errors).sort()).toEqual(['description', 'price_cents', 'units']);
    const foreign = await call('POST', 'account/bills', { group_id: otherGroup, price_cents: 100, description: 'x' });
    expect(foreign.status).toBe(400);
    expect(foreign.body.errors).toEqual({ group_id: ['does not exist or cannot be charged by your service'] });
    const otherApp = await call('POST', 'account/bills', { group_id: groupId, price_cents: 100, description: 'x' }, {}, otherAuth);
    expect(otherApp.status).toBe(400);
    const malformed = await call('POST', 'account/bills', '{"broken', { 'content-type': 'application/json' });
    expect(malformed.status).toBe(400);
    expect((await sb.admin.listBills()).length).toBe(before);
  });

  it('recurring bills - create with defaults, validation of period/frequency/cycles/start_date/initial_cents, cancel', async () => {
    const ok = await call<Obj>('POST', 'account/recurring_bills', { group_id: groupId, price_cents: 1500, description: 'Plan', period: 'Week', frequency: 2, cycles: 6, initial_cents: 500 });
    expect(ok.status).toBe(200);
    expect(ok.body.data).toMatchObject({ object: 'account_recurring_bill', period: 'week', frequency: 2, cycles: 6, initial_cents: 500, status: 'submitted', currency: 'AUD', remaining_cycles: 6 });
    const defaults = await call<Obj>('POST', 'account/recurring_bills', { group_id: groupId, price_cents: 100, description: 'Default' });
    expect(defaults.body.data).toMatchObject({ period: 'month', frequency: 1, cycles: null, initial_cents: 0 });
    const cases: Array<[Obj, string]> = [
      [{ period: 'Fortnight' }, 'period'],
      [{ period: 'SemiMonth', frequency: 2 }, 'frequency'],
      [{ period: 'Month', frequency: 13 }, 'frequency'],
      [{ period: 'Day', frequency: 366 }, 'frequency'],
      [{ frequency: 0 }, 'frequency'],
      [{ cycles: 0 }, 'cycles'],
      [{ start_date: new Date(Date.now() - 2 * 3600_000).toISOString() }, 'start_date'],
      [{ start_date: 'yesterday-ish' }, 'start_date'],
      [{ initial_cents: -1 }, 'initial_cents'],
    ];
    for (const [extra, field] of cases) {
      const res = await call('POST', 'account/recurring_bills', { group_id: groupId, price_cents: 100, description: 'x', ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(Object.keys(res.body.errors), JSON.stringify(extra)).toEqual([field]);
    }
    const soon = await call<Obj>('POST', 'account/recurring_bills', { group_id: groupId, price_cents: 100, description: 'x', period: 'SemiMonth', start_date: new Date(Date.now() - 30 * 60_000).toISOString() });
    expect(soon.status).toBe(200);
    const id = String(ok.body.data.id);
    const cancelled = await call<Obj>('DELETE', `account/recurring_bills/${id}`);
    expect(cancelled.body.data).toMatchObject({ id, status: 'cancelled' });
    const list = await call<Obj[]>('GET', `account/recurring_bills?group_id=${groupId}&status=cancelled`);
    expect(list.body.data.map((b) => b.id)).toEqual([id]);
    expect((await sb.admin.listRecurringBills(groupId)).length).toBe(3);
  });

  it('500 - a server error is answered with the system error envelope', async () => {
    const fault = await sb.admin.addFault({ path: '/api/v1/account/groups', kind: 'status', status: 500, count: 1 });
    const res = await call('GET', 'account/groups');
    expect(res.status).toBe(500);
    expect(res.body.success).toBe(false);
    expect(res.body.errors.system?.[0]).toMatch(/A system error occured/);
    expect((await call('GET', 'account/groups')).status).toBe(200);
    expect((await sb.admin.faults()).find((f) => f.id === fault.id)?.hits).toBe(1);
  });

  it('bills and recurring bills - a currency that is not ISO 4217 answers 400 with the currency error and stores nothing', async () => {
    const group = (await sb.admin.createGroup({ marketplace: 'one', name: 'Currencies' })).id;
    for (const currency of ['ZZZ', 'ABC', 'qqq']) {
      for (const path of ['account/bills', 'account/recurring_bills']) {
        const res = await call('POST', path, { group_id: group, price_cents: 100, description: 'x', currency });
        expect(res.status, `${path} ${currency}`).toBe(400);
        expect(res.body).toEqual({ success: false, errors: { currency: ['is not a valid ISO 4217 currency'] }, data: {} });
      }
    }
    expect(await sb.admin.listBills(group)).toEqual([]);
    expect(await sb.admin.listRecurringBills(group)).toEqual([]);
    const eur = await call<Obj>('POST', 'account/bills', { group_id: group, price_cents: 100, description: 'x', currency: 'eur' });
    expect(eur.status).toBe(200);
    expect(eur.body.data).toMatchObject({ currency: 'EUR' });
    const jpy = await call<Obj>('POST', 'account/recurring_bills', { group_id: group, price_cents: 100, description: 'x', currency: 'JPY' });
    expect(jpy.body.data).toMatchObject({ currency: 'JPY' });
  });
  it('admin listBills and listRecurringBills answer the Account API shapes, typed', async () => {
    const group = (await sb.admin.createGroup({ marketplace: 'one', name: 'Typed bills' })).id;
    const bill = await call<Obj>('POST', 'account/bills', { group_id: group, price_cents: 250, description: 'Export', units: 2 });
    const plan = await call<Obj>('POST', 'account/recurring_bills', { group_id: group, price_cents: 900, description: 'Plan', period: 'Month', initial_cents: 100 });
    const [listed] = await sb.admin.listBills(group);
    const [recurring] = await sb.admin.listRecurringBills(group);
    expectTypeOf(listed).toEqualTypeOf<AdminBill | undefined>();
    expectTypeOf(recurring).toEqualTypeOf<AdminRecurringBill | undefined>();
    // The admin view is the Account API's own rendering of the bill, field for field.
    expect(listed).toEqual(bill.body.data);
    expect(recurring).toEqual(plan.body.data);
    expect([listed?.price_cents, listed?.units, listed?.status, listed?.currency]).toEqual([250, 2, 'submitted', 'AUD']);
    expect([recurring?.period, recurring?.initial_cents, recurring?.status]).toEqual(['month', 100, 'submitted']);
  });
});
