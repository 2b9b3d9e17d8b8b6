// Conflict detection survives failures (CONNECTORS §F8): an id-map write that only records an
// error (a failed attempt's `lastError`, a failed push) must not hide a local edit. The engine
// compares the local record's `updatedAt` with the map's `syncedAt` (the last time app and
// Connec! were in sync), which error writes never move; `updatedAt` moves on every write.
import type { SyncEvent } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { A, C, createHarness, GROUP, type Harness, type HarnessOptions, provisionGroup, TENANT } from './harness.js';

const scope = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };
const at = (iso: string) => new Date(iso);

/**
 * Jane Doe (Connec! p9) is created locally by an inbound version at 09:00, so her id map is
 * in sync as of 09:00; then the app changes her job title at 10:03.
 */
async function syncedThenEditedLocally(options: Omit<HarnessOptions, 'clock'> = {}) {
  let now = at('2016-10-04T09:00:00Z');
  const h = await createHarness({ ...options, clock: () => now });
  const setNow = (iso: string) => {
    now = at(iso);
  };
  await provisionGroup(h.storage);
  h.connec.setClock('2016-10-04T08:59:59Z');
  const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe', job_title: 'Engineer' }, 'p9');
  await h.notify({ people: [seeded] });
  await h.drain();
  const created = await h.storage.idMaps.find(scope, { connecId: 'p9' });
  const localId = created?.localId ?? '';
  expect(h.app.contacts.get(localId)?.jobTitle).toBe('Engineer');
  expect(created?.syncedAt).toEqual(at('2016-10-04T09:00:00Z'));

  setNow('2016-10-04T10:03:00Z');
  const row = h.app.contacts.get(localId);
  if (!row) throw new Error('contact not created');
  h.app.contacts.set(localId, { ...row, jobTitle: 'VP Eng', updatedAt: at('2016-10-04T10:03:00Z') });

  /** Connec!'s version of the record with another job title, stamped `updatedAt`. */
  const incoming = (updatedAt: string) => ({
    id: [C('p9'), A(localId)],
    first_name: 'Jane',
    last_name: 'Doe',
    job_title: 'CTO',
    group_id: GROUP,
    updated_at: updatedAt,
  });
  const events: SyncEvent[] = [];
  h.sync.api.on((e) => events.push(e));
  return { h, localId, setNow, incoming, events };
}

/** The next `count` reads of the contacts table throw (the app's database hiccups). */
function failContactReads(h: Harness, count: number): void {
  const read = h.app.contacts.get.bind(h.app.contacts);
  let left = count;
  h.app.contacts.get = (key: string) => {
    if (left > 0) {
      left--;
      throw new Error('app DB: deadlock detected');
    }
    return read(key);
  };
}

describe('conflicts after a failure (CONNECTORS §F8)', () => {
  it('local-wins: a transient failure on the first attempt of an inbound update does not hide the local edit from the retry', async () => {
    const { h, localId, setNow, incoming, events } = await syncedThenEditedLocally({ contactConflict: 'local-wins' });
    setNow('2016-10-04T10:05:00Z');
    failContactReads(h, 1);
    await h.notify({ people: [incoming('2016-10-04T10:04:00Z')] });
    await h.drain(3);
    // The failed attempt recorded its error on the id map (moving updatedAt past the edit)...
    const failed = await h.storage.idMaps.find(scope, { connecId: 'p9' });
    expect(failed?.lastError).toMatchObject({ message: 'app DB: deadlock detected' });
    expect(failed?.updatedAt).toEqual(at('2016-10-04T10:05:00Z'));
    expect(failed?.syncedAt).toEqual(at('2016-10-04T09:00:00Z'));

    // ...and the retry still sees the local edit as a change: the local value wins and is pushed.
    setNow('2016-10-04T10:06:00Z');
    await h.drain();
    expect(h.app.contacts.get(localId)?.jobTitle).toBe('VP Eng');
    expect(h.sync.api.counters().conflicts).toBe(1);
    expect(events.filter((e) => e.type === 'conflict')).toEqual([expect.objectContaining({ winner: 'local', connecId: 'p9', localId })]);
    expect(h.connec.find(GROUP, 'people', 'p9')?.job_title).toBe('VP Eng');
    const map = await h.storage.idMaps.find(scope, { connecId: 'p9' });
    expect(map).toMatchObject({ lastError: null, syncedAt: at('2016-10-04T10:06:00Z') });
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('newest-wins: a failed push of the local edit does not hide it from the next inbound version', async () => {
    const { h, localId, setNow, incoming, events } = await syncedThenEditedLocally();
    // The app pushes its edit; Connec! is down for this op, so the push fails (recorded on the id map).
    setNow('2016-10-04T10:03:30Z');
    h.connec.rejectOp = () => ({ status: 503, error: 'Service Unavailable' });
    const pushed = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: h.app.contacts.get(localId) });
    expect(pushed).toMatchObject({ status: 'failed', code: 'http_503' });
    const failed = await h.storage.idMaps.find(scope, { localId });
    expect(failed).toMatchObject({ lastError: { code: 'http_503' }, updatedAt: at('2016-10-04T10:03:30Z'), syncedAt: at('2016-10-04T09:00:00Z') });
    h.connec.rejectOp = null;

    // Another app's change, made at 10:02 (before the local edit), arrives afterwards: the local edit is newer and wins.
    setNow('2016-10-04T10:05:00Z');
    await h.notify({ people: [incoming('2016-10-04T10:02:00Z')] });
    await h.drain();
    expect(h.app.contacts.get(localId)?.jobTitle).toBe('VP Eng');
    expect(h.sync.api.counters().conflicts).toBe(1);
    expect(events.find((e) => e.type === 'conflict')).toMatchObject({ winner: 'local', connecId: 'p9', localId });
    expect(h.connec.find(GROUP, 'people', 'p9')?.job_title).toBe('VP Eng');
    expect(await h.storage.idMaps.find(scope, { localId })).toMatchObject({ lastError: null, syncedAt: at('2016-10-04T10:05:00Z') });
  });

  it('local-wins: when pushing the winning local version fails, the attempt fails and its retry pushes it', async () => {
    const { h, localId, setNow, incoming } = await syncedThenEditedLocally({ contactConflict: 'local-wins' });
    setNow('2016-10-04T10:05:00Z');
    h.connec.rejectOp = (op) => (op.id === 'p9' ? { status: 503, error: 'Service Unavailable' } : null);
    await h.notify({ people: [incoming('2016-10-04T10:04:00Z')] });
    await h.drain();
    expect(h.app.contacts.get(localId)?.jobTitle).toBe('VP Eng');
    expect(h.sync.api.counters().conflicts).toBe(1);
    // The winning version was not pushed, so Connec!'s version is not marked handled: the
    // attempt failed with the push's code and is retried (syncedAt stays at the last real sync).
    expect(await h.storage.idMaps.find(scope, { localId })).toMatchObject({
      lastAppliedAt: at('2016-10-04T09:00:00Z'),
      lastError: { code: 'http_503' },
      syncedAt: at('2016-10-04T09:00:00Z'),
    });
    expect((await h.storage.jobs.counts()).pending).toBe(1);

    // Connec! is back; a later edit made there meanwhile (10:06) is delivered too. The retry
    // pushes the winning local version (stamped 10:07 by Connec!), and the 10:06 version,
    // older than what Connec! now holds, changes nothing.
    h.connec.rejectOp = null;
    setNow('2016-10-04T10:07:00Z');
    h.connec.setClock('2016-10-04T10:07:00Z');
    await h.notify({ people: [{ ...incoming('2016-10-04T10:06:00Z'), job_title: 'CEO' }] });
    await h.drain();
    expect(h.app.contacts.get(localId)?.jobTitle).toBe('VP Eng');
    expect(h.sync.api.counters().conflicts).toBe(2);
    expect(h.connec.find(GROUP, 'people', 'p9')?.job_title).toBe('VP Eng');
    expect(await h.storage.idMaps.find(scope, { localId })).toMatchObject({ lastError: null, syncedAt: at('2016-10-04T10:07:00Z') });
  });

  it('without a local edit, an inbound update after a failed attempt is applied without a conflict', async () => {
    let now = at('2016-10-04T09:00:00Z');
    const h = await createHarness({ clock: () => now, contactConflict: 'local-wins' });
    await provisionGroup(h.storage);
    h.connec.setClock('2016-10-04T08:59:59Z');
    await h.notify({ people: [h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe', job_title: 'Engineer' }, 'p9')] });
    await h.drain();
    const localId = (await h.storage.idMaps.find(scope, { connecId: 'p9' }))?.localId ?? '';
    now = at('2016-10-04T10:05:00Z');
    failContactReads(h, 1);
    await h.notify({ people: [{ id: [C('p9'), A(localId)], first_name: 'Jane', last_name: 'Doe', job_title: 'CTO', group_id: GROUP, updated_at: '2016-10-04T10:04:00Z' }] });
    await h.drain(3);
    now = at('2016-10-04T10:06:00Z');
    await h.drain();
    expect(h.app.contacts.get(localId)?.jobTitle).toBe('CTO');
    expect(h.sync.api.counters().conflicts).toBe(0);
    expect(await h.storage.idMaps.find(scope, { connecId: 'p9' })).toMatchObject({ lastError: null, syncedAt: at('2016-10-04T10:06:00Z') });
  });
});
