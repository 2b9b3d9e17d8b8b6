// The catch-up that toggle_sync enqueues when the sync is switched back on (a poll, then the
// outbound half again) and mno.sync.pushChanged: what the app changed while the sync was off
// reaches Connec!, under the conflict policy, without overwriting newer versions on either side.
import {
  createMaestrano,
  defineConnector,
  defineEntity,
  JobTypes,
  type Maestrano,
  memoryAdapter,
  type StorageAdapter,
  staticTenants,
} from '@org/maestrano-sdk';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { byName, imported, provision, setup } from './catch-up-harness.js';
import { FakeConnec } from './fake-connec.js';
import { API_ID, API_KEY, drainer, GROUP, ORG_UID, silentLogger, TENANT, testTenant } from './harness.js';

describe('toggle_sync catch-up and mno.sync.pushChanged', () => {
  it('a Connec! edit made while the sync was off, newer than the app edit, wins under newest-wins (the catch-up polls first)', async () => {
    const s = setup();
    await imported(s);
    expect((await s.toggle()).json).toMatchObject({ sync_enabled: false });

    // While off: the app renames Acme (push skipped) ...
    const acme = byName(s, 'Acme');
    const edited = { ...acme, name: 'Acme Ltd', updatedAt: new Date() };
    s.rows.set(acme.id, edited);
    expect((await s.mno.sync.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: edited })).status).toBe('skipped');
    // ... and later another app renames it in Connec! (newer).
    s.connec.setClock(new Date(Date.now() + 3_600_000).toISOString());
    s.connec.edit(GROUP, 'organizations', 'o1', { name: 'Acme Corp' });

    // Switched back on: the catch-up runs, then the next poll.
    await s.toggle();
    await s.drain();
    await s.mno.sync.pollGroup({ tenant: TENANT, groupId: GROUP });
    await s.drain();

    // Newest-wins (the entity's policy) keeps Connec!'s newer "Acme Corp" on both sides.
    expect(s.connec.find(GROUP, 'organizations', 'o1')?.name).toBe('Acme Corp');
    expect(s.rows.get(acme.id)?.name).toBe('Acme Corp');
  });

  it('an app edit pushed while the catch-up runs is not overwritten in Connec! by the older listed copy', async () => {
    let hook: ((i: number) => Promise<void>) | null = null;
    const s = setup({ batchSize: 1, between: async (i) => hook?.(i) });
    await imported(s);
    await s.toggle();
    const acme = byName(s, 'Acme');
    const globex = byName(s, 'Globex');
    // While off: both edited (pushes skipped).
    s.rows.set(acme.id, { ...acme, name: 'Acme Ltd', updatedAt: new Date() });
    s.rows.set(globex.id, { ...globex, name: 'Globex v1', updatedAt: new Date() });
    // While the catch-up pushes its first batch, a user saves Globex again; the app pushes it.
    hook = async () => {
      hook = null;
      const v2 = { ...globex, name: 'Globex v2', updatedAt: new Date() };
      s.rows.set(globex.id, v2);
      const r = await s.mno.sync.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: v2 });
      expect(r.status).toBe('pushed');
    };
    await s.toggle();
    await s.drain();
    await s.mno.sync.pollGroup({ tenant: TENANT, groupId: GROUP });
    await s.drain();
    expect(s.rows.get(globex.id)?.name).toBe('Globex v2');
    // Connec! must hold the app's latest version.
    expect(s.connec.find(GROUP, 'organizations', 'o2')?.name).toBe('Globex v2');
  });

  it('a Connec! version the app failed to apply (an error on its map) is not reverted by the catch-up', async () => {
    const s = setup({ failUpdateName: 'Acme Corp' });
    await imported(s);
    // Another app renames Acme in Connec!; the app's write of it fails (the record job dies).
    s.connec.edit(GROUP, 'organizations', 'o1', { name: 'Acme Corp' });
    const o1 = s.connec.find(GROUP, 'organizations', 'o1');
    const res = await s.mno.handler(
      new Request(`http://127.0.0.1/maestrano/connec/notifications/${TENANT}`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ organizations: [o1] }),
      }),
    );
    expect(res.status).toBeLessThan(300);
    await s.drain();
    expect((await s.storage.jobs.counts()).dead).toBeGreaterThan(0);
    expect(byName(s, 'Acme')).toBeTruthy(); // app still holds the old name; nobody edited it in the app
    // The sync is switched off and on again (no app edit in between).
    await s.toggle();
    await s.toggle();
    await s.drain();
    // The catch-up pushes "what the app changed": the app changed nothing, Connec! keeps the other app's edit.
    expect(s.connec.find(GROUP, 'organizations', 'o1')?.name).toBe('Acme Corp');
  });

  it('switched on and off repeatedly: one catch-up waits at a time, one left while off ends quietly (no dead letter)', async () => {
    let offset = 0;
    const clock = () => new Date(Date.now() + offset);
    const s = setup({ clock });
    await imported(s);
    await s.toggle(); // off
    await s.toggle(); // on: a catch-up
    await s.toggle(); // off
    await s.toggle(); // on: that catch-up is still waiting, no second one
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ pending: 1 });
    await s.toggle(); // off
    for (let h = 0; h < 10; h++) {
      await s.drain(3);
      offset += 3_600_001;
    }
    await s.drain(3);
    expect((await s.mno.sync.deadLetters({})).filter((d: { type: string }) => d.type === JobTypes.syncImport)).toHaveLength(0);
    // Back on with an edit made while off: a new catch-up pushes it.
    const acme = byName(s, 'Acme');
    s.rows.set(acme.id, { ...acme, name: 'Acme Ltd', updatedAt: new Date() });
    await s.toggle();
    await s.drain();
    expect(s.connec.find(GROUP, 'organizations', 'o1')?.name).toBe('Acme Ltd');
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ pending: 0, running: 0, dead: 0 });
  });

  it('switched on and off repeatedly after the clock was stepped back: still one catch-up waiting at a time', async () => {
    let offset = 60_000;
    const clock = () => new Date(Date.now() + offset);
    const s = setup({ clock });
    await imported(s);
    await s.toggle(); // off
    await s.toggle(); // on: a catch-up, noted while the clock ran a minute ahead
    await s.drain();
    offset = 0; // NTP steps the clock back a minute (or another instance, a minute behind, answers)
    await s.toggle(); // off
    await s.toggle(); // on: a catch-up
    await s.toggle(); // off
    await s.toggle(); // on: that catch-up is still waiting, no second one
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ pending: 1 });
  });

  it('an entity that gains local.list after the import does not make the imported group look not imported', async () => {
    const before = setup({ noList: true });
    await provision(before.storage);
    before.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
    await before.start();
    await before.drain();
    expect((await before.status()).json).toMatchObject({ status: 'SUCCESS' });
    // Deploy of the version with `list` (same storage, same Connec!).
    const after = setup({ storage: before.storage, connec: before.connec });
    const counts = await after.storage.jobs.counts();
    expect(counts.pending + counts.running).toBe(0);
    expect((await after.status()).json).toMatchObject({ status: 'SUCCESS' });
  });

  it('a lister that yields one record at a time from a page read at once: an app edit pushed meanwhile is not overwritten by its older copy', async () => {
    const s = setup({ batchSize: 1 });
    await imported(s);
    await s.toggle(); // off
    const acme = byName(s, 'Acme');
    const globex = byName(s, 'Globex');
    // While off: both edited (pushes skipped).
    s.rows.set(acme.id, { ...acme, name: 'Acme Ltd', updatedAt: new Date() });
    s.rows.set(globex.id, { ...globex, name: 'Globex v1', updatedAt: new Date() });
    // While the catch-up sends its first batch (Acme), a user saves Globex again; the app pushes it.
    const batch = s.connec.batch.bind(s.connec);
    let hooked = false;
    s.connec.batch = async (ops) => {
      if (!hooked && ops.some((op) => op.record.name === 'Acme Ltd')) {
        hooked = true;
        const v2 = { ...globex, name: 'Globex v2', updatedAt: new Date() };
        s.rows.set(globex.id, v2);
        const r = await s.mno.sync.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: v2 });
        expect(r.status).toBe('pushed');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return batch(ops);
    };
    await s.toggle(); // on: the catch-up
    await s.drain();
    expect(hooked).toBe(true);
    expect(s.rows.get(globex.id)?.name).toBe('Globex v2');
    // Connec! must hold the app's latest version, not the copy the lister read before it.
    expect(s.connec.find(GROUP, 'organizations', 'o2')?.name).toBe('Globex v2');
  });
});

describe('catch-up edges', () => {
  it("pushChanged under a test's fake timers (Date and every timer faked) finishes and pushes the change", async () => {
    const s = setup();
    await imported(s);
    vi.useFakeTimers();
    onTestFinished(() => void vi.useRealTimers());
    const acme = byName(s, 'Acme');
    s.rows.set(acme.id, { ...acme, name: 'Acme Ltd', updatedAt: new Date(Date.now() + 1_000) });
    vi.setSystemTime(Date.now() + 2_000);
    const report = await s.mno.sync.pushChanged({ tenant: TENANT, groupId: GROUP });
    expect(report.failures).toEqual([]);
    expect(s.connec.find(GROUP, 'organizations', 'o1')?.name).toBe('Acme Ltd');
  });

  it('pushChanged before the initial import pushes only: nothing is read from Connec!, the app record merges (no duplicate)', async () => {
    const s = setup();
    await provision(s.storage);
    // The app already holds "Acme"; Connec! holds "Acme" (o1) and an old "Old" (o2).
    s.rows.set('app-1', { id: 'app-1', name: 'Acme', updatedAt: new Date() });
    s.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
    s.connec.seed(GROUP, 'organizations', { name: 'Old' }, 'o2');
    const rep = await s.mno.sync.pushChanged({ tenant: TENANT, groupId: GROUP }).catch((e) => e);
    expect(rep.failures).toEqual([]);
    // Pushing what changed must not create local records from Connec! (that is the import's
    // job, after its outbound half): the app's Acme is merged into o1, no local duplicate.
    expect([...s.rows.values()].map((r) => r.name).sort()).toEqual(['Acme']);
  });

  it('on, off, on while a catch-up runs past a record: the edit made while off is pushed by the catch-up that follows', async () => {
    let hook: ((i: number) => Promise<void>) | null = null;
    const s = setup({ batchSize: 1, between: async (i) => hook?.(i) });
    await imported(s);
    await s.toggle(); // off
    const acme = byName(s, 'Acme');
    hook = async () => {
      hook = null;
      // The catch-up C1 has already listed and handled Acme (unchanged). Off, an edit, on.
      expect((await s.toggle()).json).toMatchObject({ sync_enabled: false });
      const edited = { ...(s.rows.get(acme.id) ?? acme), name: 'Acme Ltd', updatedAt: new Date() };
      s.rows.set(acme.id, edited);
      expect((await s.mno.sync.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: edited })).status).toBe('skipped');
      expect((await s.toggle()).json).toMatchObject({ sync_enabled: true });
    };
    await s.toggle(); // on: catch-up C1
    await s.drain();
    expect(hook).toBeNull();
    await s.mno.sync.pollGroup({ tenant: TENANT, groupId: GROUP });
    await s.drain();
    expect(s.connec.find(GROUP, 'organizations', 'o1')?.name).toBe('Acme Ltd');
  });

  it('a record created from Connec! (never pushed), edited in the app while off, is pushed by the catch-up', async () => {
    const s = setup();
    await imported(s);
    await new Promise((r) => setTimeout(r, 5));
    await s.toggle();
    const acme = byName(s, 'Acme');
    s.rows.set(acme.id, { ...acme, name: 'Acme Ltd', updatedAt: new Date() });
    await new Promise((r) => setTimeout(r, 5));
    await s.toggle();
    await s.drain();
    expect(s.connec.find(GROUP, 'organizations', 'o1')?.name).toBe('Acme Ltd');
  });
});

function pushOnly(storage: StorageAdapter, connec: FakeConnec, withCompanies: boolean, withPeople = true) {
  const people = new Map<string, { id: string; name: string }>([['p-1', { id: 'p-1', name: 'Ann' }]]);
  const person = defineEntity({
    name: 'people',
    connec: 'people',
    direction: 'outbound',
    toConnec: (p: { id: string; name: string }) => ({ first_name: p.name }),
    localId: (p: { id: string; name: string }) => p.id,
    local: { async *list() { yield [...people.values()]; } },
  } as never);
  const companies = defineEntity({
    name: 'companies',
    connec: 'organizations',
    direction: 'inbound',
    toLocal: (org: Record<string, unknown>) => ({ name: String(org.name ?? '') }),
    local: { create: async () => ({ id: `c-${Math.random()}` }), update: async () => undefined },
  } as never);
  const mno: Maestrano = createMaestrano({
    tenants: staticTenants([testTenant()]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger: silentLogger,
    connector: defineConnector({ entities: [...(withCompanies ? [companies] : []), ...(withPeople ? [person] : [])] } as never),
    sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 4 },
  });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await mno.handler(new Request(`http://127.0.0.1/maestrano/${TENANT}/synchronizations${path}`, {
      method,
      headers: { authorization: `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    }));
    const text = await res.text();
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };
  return { people, mno, drain: drainer(mno.worker, storage), start: () => call('POST', '', { group_id: GROUP }), toggle: () => call('PUT', '/toggle_sync', { group_id: GROUP }), status: () => call('GET', `/${GROUP}`) };
}

describe('outbound-only entities', () => {
  it('a connector with only outbound entities: import, status, toggle catch-up', async () => {
    const storage = memoryAdapter();
    const connec = new FakeConnec(ORG_UID);
    await provision(storage);
    const s = pushOnly(storage, connec, false);
    await s.start();
    await s.drain();
    expect(connec.all(GROUP, 'people').map((p) => p.first_name)).toEqual(['Ann']);
    expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
    await s.toggle();
    s.people.set('p-1', { id: 'p-1', name: 'Anna' });
    await s.toggle();
    await s.drain();
    expect(connec.all(GROUP, 'people').map((p) => p.first_name)).toEqual(['Anna']);
    expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
  });

  it('an outbound-only entity added after the import: a start pushes its existing records', async () => {
    const storage = memoryAdapter();
    const connec = new FakeConnec(ORG_UID);
    await provision(storage);
    connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
    // v1 of the app: companies only. Imported.
    const v1 = pushOnly(storage, connec, true, false);
    await v1.start();
    await v1.drain();
    expect(await v1.status()).toMatchObject({ status: 'SUCCESS' });
    // v2 deploys a new outbound entity (people, with existing rows); the platform starts a sync.
    const v2 = pushOnly(storage, connec, true, true);
    await v2.start();
    await v2.drain();
    // The new entity's existing rows reach Connec! (pushed with matching_fields by the import).
    expect(connec.all(GROUP, 'people').map((p) => p.first_name)).toEqual(['Ann']);
  });
});
