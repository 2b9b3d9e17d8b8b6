/**
 * The platform's connector control calls (PROTOCOL §5.4) end to end: the sandbox's admin
 * action `syncControl` calls a real `createMaestrano` app with a connector (served over
 * loopback HTTP by `mno.handler`), and an in-process worker runs what the start enqueued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SyncHarness, startSyncHarness, TENANT } from './harness.js';

describe('the sandbox drives the connector control endpoints of a real app (memory storage)', () => {
  let h: SyncHarness;
  beforeAll(async () => {
    h = await startSyncHarness({ storage: 'memory' });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it('start imports the group, status says SUCCESS, toggle switches the sync off (a notification is not applied) and on again', async () => {
    const { admin } = h.sandbox;
    const group = await admin.createGroup({ marketplace: TENANT, name: 'Control Co' });
    const org = await admin.createRecord(group.id, 'organizations', { name: 'Control Org' });
    const people = [];
    for (let i = 0; i < 3; i++) people.push(await admin.createRecord(group.id, 'people', { first_name: `C${i}`, last_name: 'Controlled', organization_id: org.id ?? null }));
    await admin.waitForDeliveries(20_000);
    // The first SSO provisions the company (the SDK then knows the group); no worker has run yet.
    const user = await admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
    expect(await h.login(user.id, group.id)).toBe(200);
    const scope = { tenant: TENANT, groupId: group.id, entity: 'contacts' };
    expect(await h.storage.idMaps.list(scope, { limit: 10 })).toHaveLength(0);

    // Start: the platform POSTs to the app's start path; the worker then imports the group.
    const started = await admin.syncControl({ groupId: group.id, action: 'start' });
    expect(started).toMatchObject({ method: 'POST', url: `${h.appUrl}/maestrano/${TENANT}/synchronizations`, status: 201, error: null });
    expect(started.body).toMatchObject({ group_id: group.id, sync_enabled: true, status: 'ENQUEUED' });
    // The app recorded the sync this start enqueued (its control cursor), which the worker ran.
    const tracked = await h.storage.cursors.get({ tenant: TENANT, groupId: group.id, entity: '*', kind: 'sync.control' });
    expect(typeof tracked?.data.jobId).toBe('string');
    await h.drain();
    expect((await h.storage.jobs.get(String(tracked?.data.jobId)))?.status).toBe('done');
    const maps = await h.storage.idMaps.list(scope, { limit: 10 });
    expect(maps).toHaveLength(3);
    const contacts = await Promise.all(maps.map((m) => h.db.contact(m.localId ?? '')));
    expect(contacts.map((c) => c?.lastName)).toEqual(['Controlled', 'Controlled', 'Controlled']);
    expect(contacts.map((c) => c?.firstName).sort()).toEqual(['C0', 'C1', 'C2']);
    expect(await h.storage.idMaps.list({ ...scope, entity: 'companies' }, { limit: 10 })).toHaveLength(1);

    // Status: GET on the status path with the group id.
    const status = await admin.syncControl({ groupId: group.id, action: 'status' });
    expect(status).toMatchObject({ method: 'GET', url: `${h.appUrl}/maestrano/${TENANT}/synchronizations/${group.id}`, status: 200 });
    expect(status.body).toMatchObject({ group_id: group.id, sync_enabled: true, status: 'SUCCESS' });
    expect(typeof (status.body as { updated_at?: unknown }).updated_at).toBe('string');

    // Toggle: the group's sync is switched off in the app's storage.
    const off = await admin.syncControl({ groupId: group.id, action: 'toggle' });
    expect(off).toMatchObject({ method: 'PUT', status: 200 });
    expect(off.body).toMatchObject({ group_id: group.id, sync_enabled: false, status: 'DISABLED' });
    expect((await h.storage.groups.get(TENANT, group.id))?.settings.sync).toMatchObject({ enabled: false });
    expect((await admin.syncControl({ groupId: group.id, action: 'status' })).body).toMatchObject({ status: 'DISABLED', sync_enabled: false });

    // A change made in Connec! meanwhile is delivered to the app (2xx) but not applied.
    const person = people[0];
    const map = maps.find((m) => m.connecId === person?.id);
    const before = await h.db.contact(map?.localId ?? '');
    await admin.updateRecord(group.id, 'people', String(person?.id), { job_title: 'Ignored while off' });
    const { deliveries } = await admin.waitForDeliveries(10_000);
    const notified = deliveries.filter((d) => d.kind === 'connec.notification' && (d.body ?? '').includes('Ignored while off'));
    expect(notified.length).toBeGreaterThan(0);
    expect(notified.every((d) => d.state === 'delivered')).toBe(true);
    await h.drain();
    expect((await h.db.contact(map?.localId ?? ''))?.jobTitle).toBe(before?.jobTitle ?? null);

    // A start while the sync is off enqueues nothing and says so.
    const refused = await admin.syncControl({ groupId: group.id, action: 'start' });
    expect(refused.status).toBe(201);
    expect(refused.body).toMatchObject({ sync_enabled: false, status: 'DISABLED' });

    // Toggle again: enabled, and the next change is applied.
    const on = await admin.syncControl({ groupId: group.id, action: 'toggle' });
    expect(on).toMatchObject({ method: 'PUT', status: 200 });
    expect(on.body).toMatchObject({ group_id: group.id, sync_enabled: true });
    expect((on.body as { status: string }).status).not.toBe('DISABLED');
    expect((await h.storage.groups.get(TENANT, group.id))?.settings.sync).toMatchObject({ enabled: true });
    await admin.updateRecord(group.id, 'people', String(person?.id), { job_title: 'Applied when on' });
    await admin.waitForDeliveries(10_000);
    await h.drain();
    expect((await h.db.contact(map?.localId ?? ''))?.jobTitle).toBe('Applied when on');

    // Every call is in the sandbox's delivery log, with the app's answer.
    const log = (await admin.deliveries()).filter((d) => d.kind.startsWith('sync.'));
    expect(log.map((d) => `${d.kind} ${d.state} ${d.response?.status}`)).toEqual([
      'sync.start delivered 201',
      'sync.status delivered 200',
      'sync.toggle delivered 200',
      'sync.status delivered 200',
      'sync.start delivered 201',
      'sync.toggle delivered 200',
    ]);
  }, 90_000);

  it("an unknown group is refused by the sandbox (404, nothing sent); a group the app does not know gets the app's 404", async () => {
    const { admin } = h.sandbox;
    const before = (await admin.deliveries()).length;
    await expect(admin.syncControl({ groupId: 'cld-unknown', action: 'start' })).rejects.toMatchObject({ status: 404 });
    expect((await admin.deliveries()).length).toBe(before);
    const stranger = await admin.createGroup({ marketplace: TENANT, name: 'Never logged in' });
    const result = await admin.syncControl({ groupId: stranger.id, action: 'status' });
    expect(result).toMatchObject({ status: 404, error: 'HTTP 404', body: { errors: [{ message: 'Organization not found', code: 404 }] } });
  });
});
