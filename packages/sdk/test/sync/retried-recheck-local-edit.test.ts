/**
 * A job claimed again for an ordinary reason (its first attempt met a transient failure of the
 * app's write) re-checks a version the id map would skip (see push-raced-killed-write.test.ts):
 * that re-check must not write Connec!'s version over an edit the app's user made since both
 * sides were last in sync. Connec! changed nothing meanwhile: the edit is the newest version, and
 * was kept before the re-check existed (the version skipped as a replay, or as stale).
 */
import { createSyncModule, memoryAdapter, type SyncEvent } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { buildConnector, C, createHarness, drainer, GROUP, LocalApp, notifier, ORG_UID, provisionGroup, TENANT, testRuntime, linkedJane } from './harness.js';

describe('a retried job does not write Connec!\u2019s version over a local edit made since', () => {
  for (const how of ['replay (the version applied by a poll meanwhile)', 'stale (the app pushed meanwhile)'] as const) {
    it(`${how}: the local edit is kept, and then pushed`, async () => {
      let now = new Date('2016-10-04T09:00:00Z');
      const clock = () => now;
      const h = await createHarness({ clock, contactConflict: 'connec-wins' });
      await provisionGroup(h.storage);
      const { localId } = await linkedJane(h);
      expect(h.app.contacts.get(localId)?.jobTitle).toBe('Engineer');

      // Another app renames Jane; the app's first write of that version fails (a blip).
      now = new Date('2016-10-04T09:30:00Z');
      const renamed = h.connec.edit(GROUP, 'people', 'p9', { first_name: 'Janet' });
      await h.notify({ people: [renamed] });
      const set = h.app.contacts.set.bind(h.app.contacts);
      let blips = 0;
      h.app.contacts.set = () => {
        blips++;
        throw new Error('app database blip');
      };
      await h.drain(3);
      h.app.contacts.set = set;
      expect(blips).toBeGreaterThan(0);
      expect((await h.storage.jobs.counts()).pending).toBe(1);

      if (how.startsWith('replay')) {
        // A poll applies the rename meanwhile.
        await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
        expect(h.app.contacts.get(localId)).toMatchObject({ firstName: 'Janet', jobTitle: 'Engineer' });
      } else {
        // The app pushes its user's edit (the rename not in the app yet), answered.
        now = new Date('2016-10-04T10:00:00Z');
        h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'CTO', updatedAt: now });
        const result = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...h.app.contacts.get(localId)! } });
        expect(result.status).toBe('pushed');
      }

      // The app's user edits the record again; the app has not pushed it yet.
      now = new Date('2016-10-04T10:30:00Z');
      h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'VP Sales', updatedAt: now });
      const edited = { ...h.app.contacts.get(localId)! };

      // The failed job runs again (its backoff over).
      now = new Date('2016-10-04T11:00:00Z');
      await h.drain();
      expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
      expect(h.app.contacts.get(localId)?.jobTitle).toBe('VP Sales');

      // The app pushes the edit: both sides hold it.
      const result = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...h.app.contacts.get(localId)! } });
      expect(result.status).toBe('pushed');
      expect(h.connec.find(GROUP, 'people', 'p9')).toMatchObject({ first_name: edited.firstName, job_title: 'VP Sales' });
      const echo = { ...h.connec.find(GROUP, 'people', 'p9')!, id: [C('p9')] };
      await h.notify({ people: [echo] });
      await h.drain();
      expect(h.app.contacts.get(localId)).toMatchObject({ firstName: edited.firstName, jobTitle: 'VP Sales' });
    });
  }
});

describe('a retried poll of records both sides agree on', () => {
  it('writes none of them in the app again, nor reports them applied', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const people = [1, 2, 3].map((n) => h.connec.seed(GROUP, 'people', { first_name: `P${n}`, last_name: 'Doe' }, `p${n}`));
    await h.notify({ people });
    await h.drain();
    expect(h.app.contacts.size).toBe(3);
    const writes = h.app.writes.update;
    const events: SyncEvent[] = [];
    h.sync.api.on((e) => events.push(e));
    // The poll's first attempt meets a 503 of Connec!; its retry lists the same versions.
    h.connec.failLists = 1;
    await h.sync.api.enqueuePoll({ tenant: TENANT, groupId: GROUP });
    await h.drain(20);
    expect(h.connec.failLists).toBe(0);
    expect(h.connec.listCalls.length).toBeGreaterThan(1);
    expect({
      writes: h.app.writes.update - writes,
      applied: events.filter((e) => e.type === 'record.applied').length,
      dead: (await h.storage.jobs.counts()).dead,
    }).toEqual({ writes: 0, applied: 0, dead: 0 });
  });
});

describe('a retried job of an app that cannot be read (no local.get)', () => {
  for (const pushes of [false, true]) {
  it(`${pushes ? 'a group that pushes the entity' : 'a group that does not push the entity'}: a local edit is not overwritten by a replay`, async () => {
    let now = new Date('2016-10-04T09:00:00Z');
    const clock = () => now;
    const app = new LocalApp();
    const connec = new FakeConnec(ORG_UID);
    const storage = memoryAdapter({ clock });
    const runtime = testRuntime(storage, clock);
    const connector = buildConnector(app);
    // The app gives no way to read its record: no conflict detection (Connec! wins).
    const contacts = connector.entity('contacts') as { inbound?: { local: { get?: unknown } } } | undefined;
    if (contacts?.inbound) delete contacts.inbound.local.get;
    const sync = createSyncModule(runtime, { connector, sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 4 } });
    const drain = drainer(createWorker(runtime, sync.jobs ?? {}), storage);
    const notify = notifier(sync);
    // Either the group keeps its contacts' edits local (nothing is pushed), or the app has not
    // pushed its user's edit yet (its push in flight, or failed and to be sent again).
    await provisionGroup(storage, GROUP, pushes ? {} : { sync: { entities: { contacts: { outbound: false } } } });
    connec.setClock('2016-10-04T08:59:59Z');
    await notify({ people: [connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe', job_title: 'Engineer' }, 'p9')] });
    await drain();
    const localId = (await storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p9' }))?.localId ?? '';
    expect(app.contacts.get(localId)?.jobTitle).toBe('Engineer');

    // Another app renames Jane; the app's first write of that version fails (a blip), and a poll
    // applies it meanwhile.
    now = new Date('2016-10-04T09:30:00Z');
    await notify({ people: [connec.edit(GROUP, 'people', 'p9', { first_name: 'Janet' })] });
    const set = app.contacts.set.bind(app.contacts);
    app.contacts.set = () => {
      throw new Error('app database blip');
    };
    await drain(3);
    app.contacts.set = set;
    expect((await storage.jobs.counts()).pending).toBe(1);
    await sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
    expect(app.contacts.get(localId)).toMatchObject({ firstName: 'Janet', jobTitle: 'Engineer' });

    // The app's user edits the record (kept in the app: the group does not push it).
    app.contacts.set(localId, { ...app.contacts.get(localId)!, jobTitle: 'VP Sales' });
    now = new Date('2016-10-04T11:00:00Z');
    await drain();
    expect(await storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
    expect(app.contacts.get(localId)).toMatchObject({ firstName: 'Janet', jobTitle: 'VP Sales' });
  });
  }
});

describe('a retried poll and an edit stamped no later than the last sync', () => {
  it('keeps the edit (the app stores its updatedAt to the second)', async () => {
    let now = new Date('2016-10-04T09:00:00Z');
    const clock = () => now;
    const h = await createHarness({ clock });
    await provisionGroup(h.storage);
    const { localId } = await linkedJane(h);

    // The app's user edits and the app pushes it; within the same second, the user edits again
    // (the app stores timestamps to the second: 10:00:00.800 is kept as 10:00:00).
    now = new Date('2016-10-04T10:00:00.400Z');
    h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'CTO', updatedAt: new Date('2016-10-04T10:00:00Z') });
    expect((await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...h.app.contacts.get(localId)! } })).status).toBe('pushed');
    now = new Date('2016-10-04T10:00:00.800Z');
    h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'VP Sales', updatedAt: new Date('2016-10-04T10:00:00Z') });

    // A poll meets a 503; its retry lists the push's echo.
    now = new Date('2016-10-04T10:00:05Z');
    h.connec.failLists = 1;
    await h.sync.api.enqueuePoll({ tenant: TENANT, groupId: GROUP });
    await h.drain(2);
    expect(h.connec.failLists).toBe(0);
    expect((await h.storage.jobs.counts()).pending).toBe(1);
    now = new Date('2016-10-04T10:05:00Z');
    await h.drain();
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
    expect(h.app.contacts.get(localId)?.jobTitle).toBe('VP Sales');
  });
  it('keeps an edit saved while the previous push was in flight, its own push failed (Connec! down)', async () => {
    let now = new Date('2016-10-04T09:00:00Z');
    const clock = () => now;
    const h = await createHarness({ clock });
    await provisionGroup(h.storage);
    const { localId } = await linkedJane(h);

    // The user saves CTO; the app pushes it. While that push is in flight the user saves again
    // (an autosave): VP Sales, stamped before the push's answer.
    now = new Date('2016-10-04T10:00:00Z');
    h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'CTO', updatedAt: now });
    h.connec.rejectOp = () => {
      h.connec.rejectOp = null;
      now = new Date('2016-10-04T10:00:00.200Z');
      h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'VP Sales', updatedAt: now });
      now = new Date('2016-10-04T10:00:00.400Z');
      return null;
    };
    expect((await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...h.app.contacts.get(localId)! } })).status).toBe('pushed');
    expect(h.app.contacts.get(localId)?.jobTitle).toBe('VP Sales');
    // Connec! goes down: the push of the second save fails (the app sends it again later), and
    // a poll meets a 503.
    now = new Date('2016-10-04T10:00:01Z');
    h.connec.rejectOp = () => ({ status: 503, error: 'Service Unavailable' });
    expect((await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...h.app.contacts.get(localId)! } })).status).not.toBe('pushed');
    h.connec.rejectOp = null;
    h.connec.failLists = 1;
    await h.sync.api.enqueuePoll({ tenant: TENANT, groupId: GROUP });
    await h.drain(2);
    expect((await h.storage.jobs.counts()).pending).toBe(1);
    // Connec! is back; the poll's retry runs before the app sends its edit again.
    now = new Date('2016-10-04T10:05:00Z');
    await h.drain();
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
    expect(h.app.contacts.get(localId)?.jobTitle).toBe('VP Sales');
  });
});
