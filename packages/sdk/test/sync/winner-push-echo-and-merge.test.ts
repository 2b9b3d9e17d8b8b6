/**
 * The version that won a conflict (local-wins, or a merge pushed back) is pushed before Connec!'s
 * losing version would be marked applied, and a push that went through records Connec!'s newer
 * version itself: marking the losing version afterwards (same `updated_at` when Connec! stamps
 * both in one second, other hash) overwrote the push's `lastReceivedHash` (`pushed:<answer>`), so
 * the push's own echo was fetched and written into the app as a Connec! edit. And a merge that
 * comes out as the content last agreed on is still pushed: Connec! holds another version.
 */
import type { SyncEvent } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createHarness, GROUP, type HarnessOptions, provisionGroup, TENANT } from './harness.js';

const scope = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };

async function setUp(contactConflict?: HarnessOptions['contactConflict']) {
  const h = await createHarness(contactConflict ? { contactConflict } : {});
  await provisionGroup(h.storage);
  const person = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
  await h.notify({ people: [person] });
  await h.drain();
  const [local] = [...h.app.contacts.values()];
  if (!local) throw new Error('contact not created');
  // Edited locally well after Connec!'s edit below: the default policy (newest wins) keeps it.
  h.app.contacts.set(local.id, { ...local, jobTitle: 'CEO', updatedAt: new Date(Date.now() + 60_000) });
  const edited = h.connec.edit(GROUP, 'people', 'p1', { last_name: 'Smith' });
  // Connec!'s next write (the winner's push) lands in the same second as `edited`.
  h.connec.setClock(new Date(Date.parse(String(edited.updated_at)) - 1000).toISOString());
  const events: SyncEvent[] = [];
  h.sync.api.on((e) => events.push(e));
  expect((await h.notify({ people: [edited] })).status).toBe(200);
  await h.drain();
  return { h, local, edited, events };
}

describe('a conflict winner pushed in the same second as the losing version', () => {
  it('local wins: the push echo is skipped as an echo, not fetched and written into the app', async () => {
    const { h, local, edited, events } = await setUp();
    const pushed = h.connec.find(GROUP, 'people', 'p1');
    expect(pushed).toMatchObject({ last_name: 'Doe', job_title: 'CEO', updated_at: edited.updated_at });
    const map = await h.storage.idMaps.find(scope, { connecId: 'p1' });
    const writes = h.app.writes.update;
    const fetches = h.connec.fetchCalls.length;
    events.length = 0;
    // The push's echo (Connec! notifies its current version).
    expect((await h.notify({ people: [pushed] })).status).toBe(200);
    await h.drain();
    expect({
      lastReceivedHash: map?.lastReceivedHash?.startsWith('pushed:'),
      writes: h.app.writes.update - writes,
      fetches: h.connec.fetchCalls.length - fetches,
      applied: events.filter((e) => e.type === 'record.applied').length,
      local: h.app.contacts.get(local.id)?.jobTitle,
    }).toEqual({ lastReceivedHash: true, writes: 0, fetches: 0, applied: 0, local: 'CEO' });
  });

  it('merge pushed back: the push echo is skipped as an echo, not written into the app', async () => {
    const { h, local, edited, events } = await setUp({
      strategy: { merge: ({ connec, local: mine }) => ({ ...connec, jobTitle: mine.jobTitle }) },
    });
    const pushed = h.connec.find(GROUP, 'people', 'p1');
    expect(pushed).toMatchObject({ last_name: 'Smith', job_title: 'CEO', updated_at: edited.updated_at });
    const writes = h.app.writes.update;
    events.length = 0;
    expect((await h.notify({ people: [pushed] })).status).toBe(200);
    await h.drain();
    expect({
      writes: h.app.writes.update - writes,
      applied: events.filter((e) => e.type === 'record.applied').length,
      local: h.app.contacts.get(local.id)?.lastName,
    }).toEqual({ writes: 0, applied: 0, local: 'Smith' });
  });
});

describe('a merge whose result is the content last agreed on', () => {
  it('is still pushed back: Connec! ends with the merge, not its own losing version', async () => {
    // Field ownership: the app owns the names, Connec! the job title.
    const h = await createHarness({ contactConflict: { strategy: { merge: ({ connec, local }) => ({ ...local, jobTitle: connec.jobTitle }) } } });
    await provisionGroup(h.storage);
    const person = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe', job_title: 'Engineer' }, 'p1');
    await h.notify({ people: [person] });
    await h.drain();
    const [local] = [...h.app.contacts.values()];
    if (!local) throw new Error('contact not created');
    // Each side edits the field the other owns.
    h.app.contacts.set(local.id, { ...local, jobTitle: 'VP', updatedAt: new Date(Date.now() + 60_000) });
    const edited = h.connec.edit(GROUP, 'people', 'p1', { last_name: 'Smith' });
    expect((await h.notify({ people: [edited] })).status).toBe(200);
    await h.drain();
    // The merge: names from the app (Doe), job title from Connec! (Engineer).
    expect(h.app.contacts.get(local.id)).toMatchObject({ lastName: 'Doe', jobTitle: 'Engineer' });
    expect({ counts: await h.storage.jobs.counts(), inConnec: h.connec.find(GROUP, 'people', 'p1')?.last_name }).toMatchObject({
      counts: { pending: 0, dead: 0 },
      inConnec: 'Doe',
    });
  });
});
