import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { basic, type Receiver, startReceiver } from './helpers.js';

describe('web UI over HTTP (server-rendered pages and buttons)', () => {
  let sb: Sandbox;
  let app: Receiver;
  let groupId: string;
  let userId: string;

  beforeAll(async () => {
    app = await startReceiver();
    sb = await startSandbox({ port: 0, appUrl: app.url, notifyDelayMs: 10, retryBaseMs: 50 });
    groupId = (await sb.admin.createGroup({ name: '<b>Bold</b> & Co' })).id;
    userId = (await sb.admin.createUser({ name: '<script>alert(1)</script>', memberships: [{ groupId, role: 'Admin' }] })).id;
  });
  afterAll(async () => {
    await sb.stop();
    await app.close();
  });

  const form = (path: string, body = '') =>
    fetch(`${sb.url}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });

  it('pages escape user data and list groups, users, bills and recurring bills', async () => {
    const m = sb.credentials.marketplaces[0];
    await fetch(`${sb.url}/api/v1/account/recurring_bills`, {
      method: 'POST',
      headers: { authorization: basic(m?.apiId ?? '', m?.apiKey ?? ''), 'content-type': 'application/json' },
      body: JSON.stringify({ group_id: groupId, price_cents: 999, description: 'Monthly plan' }),
    });
    const users = await (await fetch(`${sb.url}/ui/users`)).text();
    expect(users).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(users).not.toContain('<script>alert(1)</script>');
    const groups = await (await fetch(`${sb.url}/ui/groups`)).text();
    expect(groups).toContain('&lt;b&gt;Bold&lt;/b&gt; &amp; Co');
    expect(groups).toContain(`href="/launch/${groupId}"`);
    const page = await (await fetch(`${sb.url}/ui/groups/${groupId}`)).text();
    expect(page).toContain('Monthly plan');
    expect(page).toContain('Remove user from group');
    expect(page).toContain('Cancel group');
    expect((await fetch(`${sb.url}/ui/groups/cld-missing`)).status).toBe(404);
  });

  it('Connec! lists name people by first and last name (not their title), other records by name or title', async () => {
    const g = (await sb.admin.createGroup({ name: 'People Co' })).id;
    await sb.admin.createRecord(g, 'people', { title: 'Dr.', first_name: 'Ada', last_name: 'Lovelace' });
    await sb.admin.createRecord(g, 'people', { title: 'Ms.', last_name: 'Solo' });
    const people = await (await fetch(`${sb.url}/ui/groups/${g}/connec/people`)).text();
    expect(people).toContain('<td>Ada Lovelace</td>');
    expect(people).toContain('<td>Solo</td>');
    expect(people).not.toContain('<td>Dr.</td>');
    expect(people).not.toContain('<td>Ms.</td>');
    await sb.admin.createRecord(g, 'organizations', { name: 'Org One' });
    expect(await (await fetch(`${sb.url}/ui/groups/${g}/connec/organizations`)).text()).toContain('<td>Org One</td>');
  });

  it('invalid JSON in the record editor is refused with 400 and changes nothing', async () => {
    const rec = await sb.admin.createRecord(groupId, 'items', { name: 'Keep me' });
    const res = await form(`/ui/groups/${groupId}/connec/items/${String(rec.id)}`, `record=${encodeURIComponent('{not json')}`);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('valid JSON');
    expect((await sb.admin.getRecord(groupId, 'items', String(rec.id))).name).toBe('Keep me');
    const list = await (await fetch(`${sb.url}/ui/groups/${groupId}/connec/items`)).text();
    expect(list).toContain('Keep me');
  });

  it('"Remove user from group" and "Cancel group" buttons change state and send the DELETE webhooks', async () => {
    const removed = await form(`/ui/groups/${groupId}/users/${userId}/remove`);
    expect(removed.status).toBe(302);
    expect((await sb.admin.getGroup(groupId)).members).toHaveLength(0);
    const cancelled = await form(`/ui/groups/${groupId}/cancel`);
    expect(cancelled.status).toBe(302);
    expect((await sb.admin.getGroup(groupId)).status).toBe('terminated');
    await sb.admin.waitForDeliveries();
    const paths = app.requests.filter((r) => r.method === 'DELETE').map((r) => r.path);
    expect(paths).toEqual(expect.arrayContaining([`/maestrano/account/groups/${groupId}/users/${userId}/sandbox`, `/maestrano/account/groups/${groupId}/sandbox`]));
    const log = await (await fetch(`${sb.url}/ui/deliveries`)).text();
    expect(log).toContain('account.group.deleted');
    expect(log).toContain('account.group_user.deleted');
  });

  it('reports - accounts_summary answers the sandbox shape; unknown reports are 400', async () => {
    const g = await sb.admin.createGroup({});
    const m = sb.credentials.marketplaces[0];
    const auth = { authorization: basic(m?.apiId ?? '', m?.apiKey ?? '') };
    const ok = await fetch(`${sb.url}/api/reports/${g.id}/accounts_summary?from=2026-01-01&to=2026-02-01&period=MONTHLY`, { headers: auth });
    expect(await ok.json()).toEqual({ to: '2026-02-01', period: 'MONTHLY', accounts: [] });
    expect((await fetch(`${sb.url}/api/reports/${g.id}/balance_sheet`, { headers: auth })).status).toBe(400);
    expect((await fetch(`${sb.url}/api/reports/${g.id}/accounts_summary`)).status).toBe(401);
  });
});
