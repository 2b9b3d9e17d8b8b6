// A push answered while an inbound write of the same record runs, the write then failing after
// it committed (see push-raced-failed-write-window-scenario.ts): `inboundWriteFailed` takes the
// map back to the failed version only when the push's answer is *later* than that version.
// Connec! stamps to the second, so the push and the other app's edit often share one: the map
// then kept the push as applied, its echo was skipped, and the app kept the other version.
import { describe, expect, it } from 'vitest';
import { A, C, createHarness, GROUP, linkedJane, provisionGroup, TENANT } from './harness.js';

async function raceInWrite(sameSecond: boolean) {
  let now = new Date('2016-10-04T09:00:00Z');
  const h = await createHarness({ clock: () => now, contactConflict: 'connec-wins' });
  await provisionGroup(h.storage);
  const { localId } = await linkedJane(h);

  // The app edits the job title and pushes it.
  now = new Date('2016-10-04T10:00:00Z');
  h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'CTO', updatedAt: now });
  const contacts = h.connector.entity('contacts') as unknown as { inbound: { local: { update: (id: string, data: unknown, ctx: unknown) => Promise<unknown> } } };
  const update = contacts.inbound.local.update;
  let reached: () => void = () => {};
  const committed = new Promise<void>((resolve) => {
    reached = resolve;
  });
  let pushDone: () => void = () => {};
  const pushed = new Promise<void>((resolve) => {
    pushDone = resolve;
  });
  // The worker's write of the other app's version commits, then waits for the push to be
  // recorded, then throws (the connection dropped on its answer).
  contacts.inbound.local.update = async (id, data, ctx) => {
    contacts.inbound.local.update = update;
    await update(id, data, ctx);
    reached();
    await pushed;
    throw new Error('app DB: connection lost after commit');
  };
  const batch = h.connec.batch.bind(h.connec);
  let draining: Promise<void> = Promise.resolve();
  h.connec.batch = async (ops) => {
    h.connec.batch = batch;
    // Before Connec! applies the push: another app renames Jane, and the worker writes it.
    const other = h.connec.edit(GROUP, 'people', 'p9', { first_name: 'Janet' });
    await h.notify({ people: [other] });
    draining = h.drain(1);
    await committed;
    expect(h.app.contacts.get(localId)).toMatchObject({ firstName: 'Janet', jobTitle: 'Engineer' });
    // Connec! applies the push in the same second as that edit (or the next one).
    if (sameSecond) h.connec.setClock(new Date(Date.parse(String(other.updated_at)) - 1000).toISOString());
    return batch(ops);
  };
  const result = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...h.app.contacts.get(localId)!, firstName: 'Jane', jobTitle: 'CTO' } });
  pushDone();
  await draining;
  expect(result.status).toBe('pushed');
  const held = h.connec.find(GROUP, 'people', 'p9');
  expect(held).toMatchObject({ first_name: 'Jane', job_title: 'CTO' });

  // The failed job is retried and Connec! notifies the push (its echo).
  now = new Date('2016-10-04T10:05:00Z');
  await h.notify({ people: [{ ...held, id: [C('p9'), A(localId)] }] });
  await h.drain();
  expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  // Both sides hold the same version.
  expect(h.app.contacts.get(localId)).toMatchObject({ firstName: 'Jane', jobTitle: 'CTO' });
}

describe('a push answered during an inbound write that then fails after committing', () => {
  it('answered in the second after the written version: its echo writes the pushed version in the app', async () => {
    await raceInWrite(false);
  });

  it('answered in the same second as the written version: its echo writes the pushed version in the app', async () => {
    await raceInWrite(true);
  });
});
