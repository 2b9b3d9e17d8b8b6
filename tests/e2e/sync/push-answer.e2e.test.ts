/**
 * Connec!'s answer to a push carries the record as Connec! holds it after the push: an edit
 * another app made before it (its notification not applied yet), or the fields of the record a
 * create was merged into (`matching_fields`). The app gets them, though it does not push them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type PushHarness, startPushHarness, TENANT } from './push-harness.js';

let h: PushHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a push whose answer carries another app's edit", () => {
  it('writes that edit in the app, though its notification (older than the answer) arrives after the push', async () => {
    h = await startPushHarness();
    const { mno, sandbox, groupId, contacts } = h;
    contacts.set('ct-1', { id: 'ct-1', firstName: 'Ada', lastName: 'Lovelace', jobTitle: 'Engineer', email: null, updatedAt: new Date() });
    const first = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contacts.get('ct-1') });
    expect(first.status).toBe('pushed');
    const connecId = String(first.connecId);
    await sleep(5);

    // Another app sets the email (read by this app, never pushed). Its notification reaches the
    // app's inbox, but no worker has applied it yet when the user saves a new job title.
    await sandbox.admin.updateRecord(groupId, 'people', connecId, { email: { address: 'ada@other.app' } });
    await sandbox.admin.waitForDeliveries();
    await sleep(5);
    const saved = { ...(contacts.get('ct-1') as NonNullable<ReturnType<typeof contacts.get>>), jobTitle: 'CTO', updatedAt: new Date() };
    contacts.set('ct-1', saved);
    const pushed = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: saved });
    expect(pushed.status).toBe('pushed');
    expect(await sandbox.admin.getRecord(groupId, 'people', connecId)).toMatchObject({ job_title: 'CTO', email: { address: 'ada@other.app' } });

    await h.deliver();
    // Both sides end equal: the push kept, the other app's email received.
    expect(contacts.get('ct-1')).toMatchObject({ jobTitle: 'CTO', email: 'ada@other.app' });
    // Written, the answer is what both sides agree on: the next push sends nothing.
    const again = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contacts.get('ct-1') });
    expect(again.status).toBe('unchanged');
  });

  it('writes nothing in the app when the answer holds only what the app already has', async () => {
    h = await startPushHarness();
    const { mno, sandbox, groupId, contacts } = h;
    contacts.set('ct-1', { id: 'ct-1', firstName: 'Ada', lastName: 'Lovelace', jobTitle: 'Engineer', email: null, updatedAt: new Date() });
    const first = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contacts.get('ct-1') });
    const connecId = String(first.connecId);
    await sleep(5);
    // The other app's email, notified and applied before the push.
    await sandbox.admin.updateRecord(groupId, 'people', connecId, { email: { address: 'ada@other.app' } });
    await h.deliver();
    expect(contacts.get('ct-1')?.email).toBe('ada@other.app');
    const stamped = contacts.get('ct-1')?.updatedAt;
    await sleep(5);
    const saved = { ...(contacts.get('ct-1') as NonNullable<ReturnType<typeof contacts.get>>), jobTitle: 'CTO' };
    contacts.set('ct-1', saved);
    expect((await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: saved })).status).toBe('pushed');
    await h.deliver();
    // No inbound write: the row keeps the stamp it had (the harness's `local.update` moves it).
    expect(contacts.get('ct-1')).toMatchObject({ jobTitle: 'CTO', email: 'ada@other.app', updatedAt: stamped });
    expect((await h.storage.jobs.counts()).pending).toBe(0);
  });
});

describe('a new local record Connec! merges into one it holds (matching_fields)', () => {
  it("brings that record's other fields to the app without a poll", async () => {
    h = await startPushHarness({ matchingFields: ['first_name', 'last_name'] });
    const { mno, sandbox, groupId, contacts } = h;
    // Another app's person, with an email. Its notification reaches the app's inbox, but no
    // worker has applied it yet when the app pushes its own new contact of the same name.
    await sandbox.admin.createRecord(groupId, 'people', { first_name: 'Grace', last_name: 'Hopper', email: { address: 'grace@other.app' } });
    await sandbox.admin.waitForDeliveries();
    await sleep(5);
    contacts.set('ct-9', { id: 'ct-9', firstName: 'Grace', lastName: 'Hopper', jobTitle: 'Admiral', email: null, updatedAt: new Date() });
    const pushed = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contacts.get('ct-9') });
    expect(pushed).toMatchObject({ status: 'pushed', httpStatus: 200 });
    await h.deliver();
    expect(contacts.get('ct-9')).toMatchObject({ jobTitle: 'Admiral', email: 'grace@other.app' });
    expect([...contacts.keys()]).toEqual(['ct-9']);
  });
});
