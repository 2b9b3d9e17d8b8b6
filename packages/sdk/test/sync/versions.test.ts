/**
 * Which inbound version wins: two Connec! edits stamped with the same second, and our last
 * push once another version has been applied (an edit back to the pushed content, on either
 * side, is a real change, not an echo).
 */
import { describe, expect, it } from 'vitest';
import { createHarness, GROUP, TENANT } from './harness.js';

const contact = (firstName: string) => ({
  id: 'per-1',
  firstName,
  lastName: 'Smith',
  jobTitle: null,
  email: null,
  companyId: null,
  updatedAt: new Date(0),
});

describe('same-second edits', () => {
  it('a second edit with the same updated_at is applied; an older copy of that second is not', async () => {
    const h = await createHarness();
    await h.storage.groups.claim(TENANT, GROUP, { owner: 't', ttlMs: 60_000 });
    await h.storage.groups.complete(TENANT, GROUP, 't', { companyId: 'co-1', orgUid: h.connec.orgUid });
    const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p-1');
    await h.notify({ people: [seeded] });
    await h.drain();
    const [localId] = [...h.app.contacts.keys()];
    expect(h.app.contacts.get(localId ?? '')?.firstName).toBe('Jane');

    // Connec! stamps to the second: the next edit gets the same updated_at.
    h.connec.setClock(new Date(Date.parse(String(seeded.updated_at)) - 1000).toISOString());
    const edited = h.connec.edit(GROUP, 'people', 'p-1', { first_name: 'Janet' });
    expect(edited.updated_at).toBe(seeded.updated_at);
    await h.notify({ people: [edited] });
    await h.drain();
    expect(h.app.contacts.get(localId ?? '')?.firstName).toBe('Janet');
    expect(h.sync.api.counters()).toMatchObject({ updated: 1, skippedStale: 0 });

    // A late copy of an earlier edit of that second: Connec!'s current version decides.
    const fetchesBefore = h.connec.fetchCalls.length;
    await h.notify({ people: [{ ...seeded, job_title: 'Intern' }] });
    await h.drain();
    expect(h.connec.fetchCalls.length).toBe(fetchesBefore + 1);
    expect(h.app.contacts.get(localId ?? '')).toMatchObject({ firstName: 'Janet', jobTitle: null });
    expect(h.sync.api.counters()).toMatchObject({ updated: 1, skippedReplay: 1 });
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p-1' });
    expect(map?.lastAppliedAt?.toISOString()).toBe(new Date(String(seeded.updated_at)).toISOString());
  });
});

describe('our last push after an inbound version', () => {
  async function pushedThenRenamed() {
    const h = await createHarness();
    await h.storage.groups.claim(TENANT, GROUP, { owner: 't', ttlMs: 60_000 });
    await h.storage.groups.complete(TENANT, GROUP, 't', { companyId: 'co-1', orgUid: h.connec.orgUid });
    h.app.contacts.set('per-1', contact('Alice'));
    const pushed = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: contact('Alice') });
    expect(pushed.status).toBe('pushed');
    const connecId = pushed.connecId ?? '';
    // Someone renames her in Connec!; the app takes it.
    await h.notify({ people: [h.connec.edit(GROUP, 'people', connecId, { first_name: 'Bob' })] });
    await h.drain();
    expect(h.app.contacts.get('per-1')?.firstName).toBe('Bob');
    return { h, connecId };
  }

  it('a Connec! edit back to the content we pushed is applied, not skipped as an echo', async () => {
    const { h, connecId } = await pushedThenRenamed();
    await h.notify({ people: [h.connec.edit(GROUP, 'people', connecId, { first_name: 'Alice' })] });
    await h.drain();
    expect(h.app.contacts.get('per-1')?.firstName).toBe('Alice');
    expect(h.sync.api.counters()).toMatchObject({ skippedEcho: 0, updated: 2 });
  });

  it('a local edit back to the content we pushed is pushed, not reported unchanged', async () => {
    const { h, connecId } = await pushedThenRenamed();
    const again = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: contact('Alice') });
    expect(again.status).toBe('pushed');
    expect(h.connec.find(GROUP, 'people', connecId)?.first_name).toBe('Alice');
    // And the echo of that push is recognised again.
    await h.notify({ people: [h.connec.find(GROUP, 'people', connecId)] });
    await h.drain();
    expect(h.sync.api.counters().skippedEcho).toBe(1);
  });
});
