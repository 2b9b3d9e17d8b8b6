/**
 * An inbound write and a push answered ok each write the map twice: the agreed hash first
 * (`update`), then the clearing of the error they read (`idMaps.clearError`, a compare-and-set).
 * Storage failing the second write (before it writes) leaves the new hash next to the old
 * error. What is done with that pair is what would be done without the outage: the job's retry
 * writes the version and clears the error; a push failure left in place only sends the agreed
 * content once more (Connec! may hold the failed push's), which then clears it.
 */
import { memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import type { ConnecPortBatchOp } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { type Contact, createHarness, GROUP, linkedJane, provisionGroup, TENANT } from './harness.js';

/** Once armed, the next `idMaps.clearError` fails before writing; `onFire` runs first. */
function failingClearError(inner: StorageAdapter, state: { armed: boolean; fired: boolean; onFire?: () => Promise<void> }): StorageAdapter {
  const idMaps = {
    ...inner.idMaps,
    clearError: async (...args: Parameters<StorageAdapter['idMaps']['clearError']>) => {
      if (state.armed && !state.fired) {
        state.fired = true;
        await state.onFire?.();
        throw new Error('database unavailable');
      }
      return inner.idMaps.clearError(...args);
    },
  };
  return Object.assign(Object.create(null), inner, { idMaps }) as StorageAdapter;
}

async function setup() {
  let now = new Date('2016-10-04T09:00:00Z');
  const clock = () => now;
  const state: { armed: boolean; fired: boolean; onFire?: () => Promise<void> } = { armed: false, fired: false };
  const h = await createHarness({ clock, storage: failingClearError(memoryAdapter({ clock }), state) });
  const { app, connec, connector, storage, sync, drain, notify } = h;
  const ids = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };
  await provisionGroup(storage);
  const { localId } = await linkedJane(h);
  const push = (record: Contact) => sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...record } });
  const edit = (jobTitle: string, at: string) => {
    now = new Date(at);
    app.contacts.set(localId, { ...app.contacts.get(localId)!, jobTitle, updatedAt: now });
    return app.contacts.get(localId)!;
  };
  const map = () => storage.idMaps.find(ids, { connecId: 'p9' });
  /** Runs the jobs, retries included (due on the test's clock, moved past each backoff). */
  const settle = async () => {
    for (let round = 0; round < 10; round++) {
      await drain(2);
      if ((await storage.jobs.counts()).pending === 0) return;
      now = new Date(now.getTime() + 60_000);
    }
  };
  return { app, connec, connector, storage, state, drain: settle, notify, push, edit, map, localId };
}

describe('the error clearing after the agreed hash meets an outage', () => {
  it('an inbound write: the retry writes the version again and clears the error', async () => {
    const { app, connec, connector, storage, state, drain, notify, push, edit, map, localId } = await setup();
    // The first write of another app's edit fails: its error is on the map when the retry reads it.
    const contacts = connector.entity('contacts') as { inbound: { local: { update: (id: string, data: unknown, ctx: unknown) => Promise<unknown> } } };
    const update = contacts.inbound.local.update;
    let failures = 1;
    contacts.inbound.local.update = async (id, data, ctx) => {
      if (failures-- > 0) throw new Error('app database unavailable');
      return update(id, data, ctx);
    };
    // Between the two writes, the app pushes the record it holds (Connec!'s version): answered
    // `unchanged`, the error left being the failed write's, not a push's.
    let between: string | undefined;
    state.onFire = async () => {
      expect((await map())?.lastError?.message).toBe('app database unavailable');
      between = (await push(app.contacts.get(localId)!)).status;
    };
    state.armed = true;
    await notify({ people: [connec.edit(GROUP, 'people', 'p9', { job_title: 'Manager' })] });
    await drain();
    expect({ fired: state.fired, between, local: app.contacts.get(localId)?.jobTitle, counts: await storage.jobs.counts() }).toMatchObject({
      fired: true,
      between: 'unchanged',
      local: 'Manager',
      counts: { pending: 0, running: 0, dead: 0 },
    });
    expect((await map())?.lastError).toBeNull();
    // The agreed content moved on: a local edit back to the old title is pushed.
    expect((await push(edit('Engineer', '2016-10-04T11:00:00Z'))).status).toBe('pushed');
    expect(connec.find(GROUP, 'people', 'p9')).toMatchObject({ job_title: 'Engineer' });
  });

  it('a push answered ok: the call fails, the push failure stays, the next push of that content is sent and clears it', async () => {
    const { app, connec, storage, state, drain, notify, push, edit, map, localId } = await setup();
    // A push Connec! answers 503 without applying it.
    const batch = connec.batch.bind(connec);
    connec.batch = async (ops: ConnecPortBatchOp[]) => ops.map(() => ({ status: 503, record: null, error: 'Service Unavailable' }));
    expect((await push(edit('CTO', '2016-10-04T10:00:00Z'))).status).toBe('failed');
    connec.batch = batch;
    // The next push is applied; storage fails the clearing of that failure.
    state.armed = true;
    await expect(push(edit('VP', '2016-10-04T10:30:00Z'))).rejects.toThrow('database unavailable');
    expect(state.fired).toBe(true);
    expect(connec.find(GROUP, 'people', 'p9')).toMatchObject({ job_title: 'VP' });
    expect((await map())?.lastError?.code).toBe('http_503');
    // The app pushes the same record again: sent (the failure says Connec! may hold another
    // content), answered ok, and nothing is left to send.
    expect((await push(app.contacts.get(localId)!)).status).toBe('pushed');
    expect((await map())?.lastError).toBeNull();
    expect((await push(app.contacts.get(localId)!)).status).toBe('unchanged');
    // The pushes' echoes leave the app as it is.
    await notify({ people: [connec.find(GROUP, 'people', 'p9')!] });
    await drain();
    expect({ local: app.contacts.get(localId)?.jobTitle, counts: await storage.jobs.counts() }).toMatchObject({ local: 'VP', counts: { pending: 0, running: 0, dead: 0 } });
  });
});
