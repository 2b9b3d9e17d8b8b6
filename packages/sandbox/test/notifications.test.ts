import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { basic, decodeBasic, type Receiver, startReceiver } from './helpers.js';

type Rec = Record<string, unknown>;

describe('notifications and account webhooks to the app (PROTOCOL §5, §6.12)', () => {
  let sb: Sandbox;
  let app: Receiver;
  let groupA: string;
  let groupB: string;

  beforeAll(async () => {
    app = await startReceiver();
    sb = await startSandbox({ port: 0, appUrl: app.url, marketplaces: ['alpha', 'beta'], notifyDelayMs: 20, retryBaseMs: 50, maxDeliveryAttempts: 4 });
    groupA = (await sb.admin.createGroup({ marketplace: 'alpha', orgUid: 'org-a' })).id;
    groupB = (await sb.admin.createGroup({ marketplace: 'beta', orgUid: 'org-b' })).id;
  });
  afterAll(async () => {
    await sb.stop();
    await app.close();
  });

  it('admin create and update - POSTed to the marketplace notification path with Basic auth, keyed by collection, with group_id and id arrays', async () => {
    app.requests.length = 0;
    const created = await sb.admin.createRecord(groupA, 'people', { first_name: 'Nora', last_name: 'Notify' });
    await sb.admin.updateRecord(groupA, 'people', String(created.id), { job_title: 'CFO' });
    await sb.admin.createRecord(groupA, 'items', { name: 'Gizmo' });
    await sb.admin.createRecord(groupB, 'organizations', { name: 'Beta Org' });
    const { deliveries, idle } = await sb.admin.waitForDeliveries();
    expect(idle).toBe(true);
    const alpha = app.requests.filter((r) => r.path === '/maestrano/connec/notifications/alpha');
    const beta = app.requests.filter((r) => r.path === '/maestrano/connec/notifications/beta');
    expect(alpha.length).toBeGreaterThanOrEqual(1);
    expect(beta).toHaveLength(1);
    const [ma, mb] = sb.credentials.marketplaces;
    for (const r of alpha) {
      expect(r.method).toBe('POST');
      expect(decodeBasic(r.headers.authorization)).toEqual({ user: ma?.apiId, password: ma?.apiKey });
      expect(r.headers['content-type']).toContain('application/json');
    }
    expect(decodeBasic(beta[0]?.headers.authorization)).toEqual({ user: mb?.apiId, password: mb?.apiKey });
    const merged: Record<string, Rec[]> = {};
    for (const r of alpha) for (const [k, v] of Object.entries(JSON.parse(r.body) as Record<string, Rec[]>)) merged[k] = [...(merged[k] ?? []), ...v];
    const people = merged.people ?? [];
    const last = people[people.length - 1];
    expect(last).toMatchObject({ group_id: groupA, channel_id: 'org-a', first_name: 'Nora', job_title: 'CFO', resource_type: 'people' });
    expect(last?.id).toEqual([{ id: created.id, provider: 'connec', realm: 'org-a' }]);
    expect(merged.items?.[0]).toMatchObject({ name: 'Gizmo', group_id: groupA });
    expect(JSON.parse(beta[0]?.body ?? '{}')).toEqual({ organizations: [expect.objectContaining({ name: 'Beta Org', group_id: groupB })] });
    expect(deliveries.filter((d) => d.kind === 'connec.notification').every((d) => d.state === 'delivered')).toBe(true);
  });

  it('externalIds: false - notifications carry plain ids and the document says external_ids false', async () => {
    const plainApp = await startReceiver();
    const plain = await startSandbox({ port: 0, appUrl: plainApp.url, externalIds: false, notifyDelayMs: 10 });
    try {
      const g = await plain.admin.createGroup({ orgUid: 'org-plain' });
      const rec = await plain.admin.createRecord(g.id, 'people', { first_name: 'Plain' });
      await plain.admin.waitForDeliveries();
      const body = JSON.parse(plainApp.requests[0]?.body ?? '{}') as { people: Rec[] };
      expect(body.people[0]).toMatchObject({ id: rec.id, group_id: g.id, first_name: 'Plain' });
      const [doc] = await plain.admin.marketplaces();
      if (!doc) throw new Error('no marketplace document');
      expect((doc.webhooks as { connec: { external_ids: boolean } }).connec.external_ids).toBe(false);
    } finally {
      await plain.stop();
      await plainApp.close();
    }
  });

  it('changes made by the app itself through Connec! are not notified back', async () => {
    await sb.admin.waitForDeliveries();
    app.requests.length = 0;
    const m = sb.credentials.marketplaces[0];
    const res = await fetch(`${sb.url}/api/v2/${groupA}/people`, {
      method: 'POST',
      headers: { authorization: basic(m?.apiId ?? '', m?.apiKey ?? ''), 'content-type': 'application/json' },
      body: JSON.stringify({ people: { first_name: 'Self' } }),
    });
    expect(res.status).toBe(201);
    const marker = await sb.admin.createRecord(groupA, 'items', { name: 'Marker' });
    await sb.admin.waitForDeliveries();
    const bodies = app.requests.map((r) => r.body).join('\n');
    expect(bodies).toContain(String(marker.id));
    expect(bodies).not.toContain('Self');
  });

  it('changes made by another app connected to the group are notified to the group app', async () => {
    await sb.admin.waitForDeliveries();
    app.requests.length = 0;
    const other = await sb.admin.createOtherApp({ groupIds: [groupA], name: 'CRM' });
    const res = await fetch(`${sb.url}/api/v2/${groupA}/people`, {
      method: 'POST',
      headers: { authorization: basic(other.apiId, other.apiKey), 'content-type': 'application/json' },
      body: JSON.stringify({ people: { first_name: 'FromOtherApp' } }),
    });
    expect(res.status).toBe(201);
    const denied = await fetch(`${sb.url}/api/v2/${groupB}/people`, { headers: { authorization: basic(other.apiId, other.apiKey) } });
    expect(denied.status).toBe(401);
    await sb.admin.waitForDeliveries();
    const note = app.requests.find((r) => r.path === '/maestrano/connec/notifications/alpha' && r.body.includes('FromOtherApp'));
    expect(note?.method).toBe('POST');
    expect((JSON.parse(note?.body ?? '{}') as { people: Rec[] }).people[0]).toMatchObject({ group_id: groupA, first_name: 'FromOtherApp' });
  });

  it('failed deliveries are retried with backoff and the attempts are logged', async () => {
    await sb.admin.waitForDeliveries();
    app.requests.length = 0;
    app.failNext(2, 503);
    const rec = await sb.admin.createRecord(groupA, 'organizations', { name: 'Retry Me' });
    const { deliveries } = await sb.admin.waitForDeliveries();
    const d = deliveries.find((x) => x.body?.includes(String(rec.id)));
    expect(d?.state).toBe('delivered');
    expect(d?.attempts.map((a) => a.status)).toEqual([503, 503, 200]);
    const received = app.requests.filter((r) => r.body.includes('Retry Me'));
    expect(received).toHaveLength(3);
    expect(Date.parse(d?.attempts[2]?.at ?? '')).toBeGreaterThanOrEqual(Date.parse(d?.attempts[1]?.at ?? ''));
  });

  it('a delivery that keeps failing ends as failed after maxDeliveryAttempts', async () => {
    await sb.admin.waitForDeliveries();
    app.failNext(10, 500);
    const rec = await sb.admin.createRecord(groupA, 'organizations', { name: 'Doomed' });
    const { deliveries } = await sb.admin.waitForDeliveries();
    const d = deliveries.find((x) => x.body?.includes(String(rec.id)));
    expect(d?.state).toBe('failed');
    expect(d?.attempts).toHaveLength(4);
    app.failNext(0);
    const ui = await fetch(`${sb.url}/ui/deliveries`);
    expect(await ui.text()).toContain('class="failed"');
  });

  it('remove user from group and cancel group - DELETE webhooks with Basic auth; the group loses Connec! access', async () => {
    await sb.admin.waitForDeliveries();
    app.requests.length = 0;
    const user = await sb.admin.createUser({ memberships: [{ groupId: groupA }] });
    const removed = await sb.admin.removeMember(groupA, user.id);
    expect(removed.delivery?.kind).toBe('account.group_user.deleted');
    const cancel = await sb.admin.cancelGroup(groupB);
    expect(cancel.group.status).toBe('terminated');
    await sb.admin.waitForDeliveries();
    const [ma, mb] = sb.credentials.marketplaces;
    const du = app.requests.find((r) => r.path === `/maestrano/account/groups/${groupA}/users/${user.id}/alpha`);
    expect(du?.method).toBe('DELETE');
    expect(decodeBasic(du?.headers.authorization)).toEqual({ user: ma?.apiId, password: ma?.apiKey });
    const dg = app.requests.find((r) => r.path === `/maestrano/account/groups/${groupB}/beta`);
    expect(dg?.method).toBe('DELETE');
    expect(decodeBasic(dg?.headers.authorization)).toEqual({ user: mb?.apiId, password: mb?.apiKey });
    expect((await sb.admin.getGroup(groupA)).members.map((m) => m.userId)).not.toContain(user.id);
    const res = await fetch(`${sb.url}/api/v2/${groupB}/people`, { headers: { authorization: basic(mb?.apiId ?? '', mb?.apiKey ?? '') } });
    expect(res.status).toBe(401);
    await expect(sb.admin.removeMember(groupA, user.id)).rejects.toMatchObject({ status: 404 });
    const resent = await sb.admin.triggerWebhook({ type: 'group_user.deleted', groupId: groupA, userId: user.id });
    expect(resent.url).toBe(`${app.url}/maestrano/account/groups/${groupA}/users/${user.id}/alpha`);
    await sb.admin.waitForDeliveries();
    expect(app.requests.filter((r) => r.path === `/maestrano/account/groups/${groupA}/users/${user.id}/alpha`)).toHaveLength(2);
    await expect(sb.admin.triggerWebhook({ type: 'group.deleted', groupId: 'cld-nope' })).rejects.toMatchObject({ status: 404 });
  });
});

describe('final bill on group deletion (PROTOCOL §5.1)', () => {
  type Answer = { status: number; body: { success: boolean; errors: Record<string, string[]>; data: Rec } };
  let sb: Sandbox;
  let alpha: string;
  let beta: string;
  /** What the app's group-deleted handler got from the Account API, keyed by group id. */
  const duringWebhook = new Map<string, { own: Answer; foreign: Answer }>();
  const app = createServer((req, res) => {
    const match = /^\/maestrano\/account\/groups\/([^/]+)\/(alpha|beta)$/.exec(req.url ?? '');
    const reply = () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"success":true}');
    };
    if (req.method !== 'DELETE' || !match?.[1]) return reply();
    const groupId = match[1];
    // The app answers only after it has posted its final bill, with its own and with the other marketplace's credentials.
    void Promise.all([postBill(match[2] === 'alpha' ? alpha : beta, groupId), postBill(match[2] === 'alpha' ? beta : alpha, groupId)])
      .then(([own, foreign]) => duringWebhook.set(groupId, { own, foreign }))
      .finally(reply);
  });

  const postBill = async (authz: string, groupId: string, collection = 'bills'): Promise<Answer> => {
    const res = await fetch(`${sb.url}/api/v1/account/${collection}`, {
      method: 'POST',
      headers: { authorization: authz, 'content-type': 'application/json' },
      body: JSON.stringify({ group_id: groupId, price_cents: 1234, description: 'Final usage', currency: 'AUD' }),
    });
    return { status: res.status, body: (await res.json()) as Answer['body'] };
  };

  beforeAll(async () => {
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const { port } = app.address() as AddressInfo;
    sb = await startSandbox({ port: 0, appUrl: `http://127.0.0.1:${port}`, marketplaces: ['alpha', 'beta'], retryBaseMs: 50 });
    const [ma, mb] = sb.credentials.marketplaces;
    if (!ma || !mb) throw new Error('marketplaces');
    alpha = basic(ma.apiId, ma.apiKey);
    beta = basic(mb.apiId, mb.apiKey);
  });
  afterAll(async () => {
    await sb.stop();
    await new Promise((resolve) => app.close(resolve));
  });

  it('a one-off bill posted during and right after the group-deleted webhook is accepted for the own group only', async () => {
    const group = await sb.admin.createGroup({ marketplace: 'alpha' });
    const cancel = await sb.admin.cancelGroup(group.id);
    expect(cancel.group.status).toBe('terminated');
    const { deliveries } = await sb.admin.waitForDeliveries();
    expect(deliveries.find((d) => d.kind === 'account.group.deleted' && d.url.includes(group.id))?.state).toBe('delivered');

    const during = duringWebhook.get(group.id);
    expect(during?.own.status).toBe(200);
    expect(during?.own.body).toMatchObject({ success: true, data: { object: 'account_bill', group_id: group.id, price_cents: 1234, status: 'submitted' } });
    expect(during?.foreign).toEqual({ status: 400, body: { success: false, errors: { group_id: ['does not exist or cannot be charged by your service'] }, data: {} } });

    const after = await postBill(alpha, group.id);
    expect(after.status).toBe(200);
    expect((await sb.admin.listBills(group.id)).map((b) => b.id).sort()).toEqual([during?.own.body.data.id, after.body.data.id].sort());
    // The other marketplace's group stays out of reach, terminated or not.
    const betaGroup = await sb.admin.createGroup({ marketplace: 'beta' });
    await sb.admin.cancelGroup(betaGroup.id, { webhook: false });
    expect((await postBill(alpha, betaGroup.id)).status).toBe(400);
  });

  it('recurring bills for a terminated group and bills for unknown groups are still refused', async () => {
    const group = await sb.admin.createGroup({ marketplace: 'alpha' });
    expect((await postBill(alpha, group.id, 'recurring_bills')).status).toBe(200);
    await sb.admin.cancelGroup(group.id, { webhook: false });
    const recurring = await postBill(alpha, group.id, 'recurring_bills');
    expect(recurring).toEqual({ status: 400, body: { success: false, errors: { group_id: ['does not exist or cannot be charged by your service'] }, data: {} } });
    expect((await postBill(alpha, 'cld-nope')).status).toBe(400);
    expect(await sb.admin.listRecurringBills(group.id)).toHaveLength(1);
    expect(await sb.admin.listBills(group.id)).toEqual([]);
  });
});
