// toggle_sync switching the sync back on: the catch-up of the app's edits made while it was off
// is enqueued whenever some records may have been passed already (an import running or past its
// outbound half, not only a completed import); what a switch-on must store is stored under the
// settings lock, and a failure there undoes the switch, so the platform's retry ends where one
// successful call would have.
import { JobTypes, memoryAdapter, type StorageAdapter, } from '@org/maestrano-sdk';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { byName, type Co, imported, provision, type Setup, setup } from './catch-up-harness.js';
import { GROUP, TENANT, } from './harness.js';

/** Off, an app edit of `id` (its push skipped), on: what the platform and the app do meanwhile. */
async function offEditOn(s: Setup, id: string, name: string, updatedAt = new Date()) {
  expect(await s.toggle()).toMatchObject({ status: 200, json: { sync_enabled: false } });
  const edited = { ...(s.rows.get(id) as Co), name, updatedAt };
  s.rows.set(id, edited);
  expect((await s.mno.sync.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: edited })).status).toBe('skipped');
  expect(await s.toggle()).toMatchObject({ status: 200, json: { sync_enabled: true } });
}

const syncOff = async (s: Setup) => (await s.status()).json.sync_enabled === false;

/** Memory storage whose `jobs.enqueue` / `jobs.wake` can be made to fail or wait. */
function hookedStorage() {
  const memory = memoryAdapter();
  const hooks: { enqueue?: ((input: Parameters<typeof memory.jobs.enqueue>[0]) => Promise<void>) | undefined; wake?: (() => Promise<void>) | undefined } = {};
  const storage: StorageAdapter = {
    ...memory,
    jobs: {
      ...memory.jobs,
      enqueue: async (input) => {
        await hooks.enqueue?.(input);
        return memory.jobs.enqueue(input);
      },
      wake: async (key) => {
        await hooks.wake?.();
        return memory.jobs.wake(key);
      },
    },
  };
  return { storage, hooks };
}
const isCatchUp = (input: { type: string; payload: unknown }) =>
  input.type === JobTypes.syncImport && typeof input.payload === 'object' && input.payload !== null && (input.payload as { outbound?: unknown }).outbound === true;

describe('toggle_sync: switched off and on while the initial import runs', () => {
  // The import's push merged app-1 into o1 (matching_fields), so o1's listing is applied, under
  // the conflict policy. With a clock that does not move, the edit is stamped with the push's
  // millisecond: it was taken for the synced record and overwritten by Connec!'s older version.
  it.each([
    ['', false],
    [" (a clock that does not move: the edit in the millisecond of the import's push)", true],
  ])('in its inbound half (its outbound half passed the record): the edit made while off reaches Connec!%s', async (_name, frozenClock) => {
    const frozen = new Date();
    const s = setup(frozenClock ? { clock: () => new Date(frozen) } : {});
    await provision(s.storage);
    s.rows.set('app-1', { id: 'app-1', name: 'Acme', updatedAt: new Date(frozen.getTime() - (frozenClock ? 60_000 : 0)) });
    s.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
    const listPage = s.connec.listPage.bind(s.connec);
    let hooked = false;
    s.connec.listPage = async (groupId, collection, options) => {
      if (!hooked && collection === 'organizations') {
        hooked = true;
        await offEditOn(s, 'app-1', 'Acme Ltd', frozenClock ? new Date(frozen) : new Date());
      }
      return listPage(groupId, collection, options);
    };
    await s.start();
    await s.drain();
    expect(hooked).toBe(true);
    expect(await s.status()).toMatchObject({ json: { status: 'SUCCESS', sync_enabled: true } });
    expect(s.rows.get('app-1')?.name).toBe('Acme Ltd');
    expect(s.connec.find(GROUP, 'organizations', 'o1')?.name).toBe('Acme Ltd');
    // One company on each side: the catch-up updated o1, it created nothing.
    expect([...s.rows.values()]).toHaveLength(1);
    expect(s.connec.all(GROUP, 'organizations')).toHaveLength(1);
  });

  it('in its outbound half, past the record (no checkpoint written yet): the edit made while off reaches Connec!', async () => {
    let hook: ((i: number) => Promise<void>) | null = null;
    const s = setup({ between: async (i) => hook?.(i) });
    await provision(s.storage);
    s.rows.set('app-1', { id: 'app-1', name: 'Acme', updatedAt: new Date() });
    s.rows.set('app-2', { id: 'app-2', name: 'Globex', updatedAt: new Date() });
    hook = async () => {
      hook = null;
      // The import's outbound half has listed app-1 (its old copy) and is about to list app-2.
      expect((await s.storage.cursors.list(TENANT, GROUP)).filter((c) => c.kind.startsWith('import'))).toEqual([]);
      await offEditOn(s, 'app-1', 'Acme Ltd');
    };
    await s.start();
    await s.drain();
    expect(hook).toBeNull();
    // The import's one attempt, then the catch-up that followed it.
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ done: 2, dead: 0 });
    expect(s.rows.get('app-1')?.name).toBe('Acme Ltd');
    expect(s.connec.all(GROUP, 'organizations').map((o) => o.name).sort()).toEqual(['Acme Ltd', 'Globex']);
  });

  it("the same, with the import's pushes and the catch-up's start in one millisecond (a clock that does not move): the edit still reaches Connec!", async () => {
    // What a fast machine does now and then: the import pushes app-1's old copy and the
    // catch-up claimed right after it starts within the same millisecond. The map's `syncedAt`
    // then equals the catch-up's start, and was taken for a sync made after the lister began.
    const frozen = new Date();
    let hook: ((i: number) => Promise<void>) | null = null;
    const s = setup({ clock: () => new Date(frozen), between: async (i) => hook?.(i) });
    await provision(s.storage);
    s.rows.set('app-1', { id: 'app-1', name: 'Acme', updatedAt: frozen });
    s.rows.set('app-2', { id: 'app-2', name: 'Globex', updatedAt: frozen });
    hook = async () => {
      hook = null;
      await offEditOn(s, 'app-1', 'Acme Ltd');
    };
    await s.start();
    await s.drain();
    expect(hook).toBeNull();
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ done: 2, dead: 0 });
    expect(s.connec.all(GROUP, 'organizations').map((o) => o.name).sort()).toEqual(['Acme Ltd', 'Globex']);
  });
});

describe('toggle_sync: a switch-on whose follow-up could not be stored', () => {
  it('the catch-up enqueue fails: 5xx, the sync stays off; the retry switches it on and the catch-up pushes the edit', async () => {
    const { storage, hooks } = hookedStorage();
    const s = setup({ storage });
    await imported(s);
    expect((await s.toggle()).json).toMatchObject({ sync_enabled: false });
    const acme = byName(s, 'Acme');
    s.rows.set(acme.id, { ...acme, name: 'Acme Ltd', updatedAt: new Date() });
    hooks.enqueue = async (input) => {
      if (isCatchUp(input)) throw new Error('database is down');
    };
    const failed = await s.toggle();
    hooks.enqueue = undefined;
    expect(failed.status).toBeGreaterThanOrEqual(500);
    // As before the call: off, nothing enqueued.
    expect(await syncOff(s)).toBe(true);
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ pending: 0, running: 0 });
    // The platform retries the same request: on, as one successful call would have left it.
    expect(await s.toggle()).toMatchObject({ status: 200, json: { sync_enabled: true } });
    await s.drain();
    expect(s.connec.find(GROUP, 'organizations', 'o1')?.name).toBe('Acme Ltd');
  });

  it('the wake fails after the catch-up was stored: 5xx, the sync stays off; the retry reuses that catch-up', async () => {
    const { storage, hooks } = hookedStorage();
    const s = setup({ storage });
    await imported(s);
    expect((await s.toggle()).json).toMatchObject({ sync_enabled: false });
    const acme = byName(s, 'Acme');
    s.rows.set(acme.id, { ...acme, name: 'Acme Ltd', updatedAt: new Date() });
    hooks.wake = async () => {
      throw new Error('database is down');
    };
    const failed = await s.toggle();
    hooks.wake = undefined;
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect(await syncOff(s)).toBe(true);
    expect(await s.toggle()).toMatchObject({ status: 200, json: { sync_enabled: true } });
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ pending: 1 });
    await s.drain();
    expect(s.connec.find(GROUP, 'organizations', 'o1')?.name).toBe('Acme Ltd');
  });

  it('the re-enqueue of an unfinished import fails: 5xx, the sync stays off', async () => {
    const { storage, hooks } = hookedStorage();
    const s = setup({ storage });
    await provision(s.storage);
    expect((await s.toggle()).json).toMatchObject({ sync_enabled: false });
    hooks.enqueue = async (input) => {
      if (input.type === JobTypes.syncImport) throw new Error('database is down');
    };
    const failed = await s.toggle();
    hooks.enqueue = undefined;
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect(await syncOff(s)).toBe(true);
    expect(await s.toggle()).toMatchObject({ status: 200, json: { sync_enabled: true, status: 'ENQUEUED' } });
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ pending: 1 });
  });
});

describe('toggle_sync: overlapping switches', () => {
  it('on, then off and on while the first switch-on stores its catch-up: one catch-up is enqueued, not two', async () => {
    const { storage, hooks } = hookedStorage();
    const s = setup({ storage });
    await imported(s);
    expect((await s.toggle()).json).toMatchObject({ sync_enabled: false });
    let reached!: () => void;
    const atEnqueue = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    hooks.enqueue = async (input) => {
      if (!isCatchUp(input)) return;
      hooks.enqueue = undefined;
      reached();
      await released;
    };
    // Instance A switches on and is slow storing its catch-up; instances B and C switch off and on.
    const first = s.toggle();
    await atEnqueue;
    const others = (async () => [await s.toggle(), await s.toggle()])();
    await new Promise((r) => setTimeout(r, 100));
    release();
    expect(await first).toMatchObject({ status: 200, json: { sync_enabled: true } });
    const [off, on] = await others;
    expect(off).toMatchObject({ status: 200, json: { sync_enabled: false } });
    expect(on).toMatchObject({ status: 200, json: { sync_enabled: true } });
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ pending: 1 });
  });
});

/**
 * A switch-on (instance A) whose catch-up write stalls until its settings lock's 30 s lease
 * has lapsed (the clock moved past it), then fails when `fail()` is called; resolves once A
 * is stalled, with A's answer to come.
 */
async function switchOnStalledPastLease() {
  const { storage, hooks } = hookedStorage();
  const s = setup({ storage });
  await imported(s);
  expect((await s.toggle()).json).toMatchObject({ sync_enabled: false });
  let reached!: () => void;
  const atEnqueue = new Promise<void>((resolve) => {
    reached = resolve;
  });
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  hooks.enqueue = async (input) => {
    if (!isCatchUp(input)) return;
    hooks.enqueue = undefined;
    reached();
    await released;
    throw new Error('database is down');
  };
  const answer = s.toggle();
  await atEnqueue;
  vi.useFakeTimers({ toFake: ['Date'] });
  onTestFinished(() => {
    vi.useRealTimers();
  });
  vi.setSystemTime(Date.now() + 31_000);
  return { s, answer, fail: release };
}

describe('toggle_sync: the undo of a failed switch-on after its settings lock lapsed', () => {
  it("does not switch off a later toggle's switch-on that the platform got a 200 for", async () => {
    const a = await switchOnStalledPastLease();
    // Instances B and C switch off and on meanwhile: both answered 200, the last one "on".
    expect(await a.s.toggle()).toMatchObject({ status: 200, json: { sync_enabled: false } });
    expect(await a.s.toggle()).toMatchObject({ status: 200, json: { sync_enabled: true } });
    // A's catch-up write then fails: A answers 5xx, and its undo must not touch C's switch.
    a.fail();
    expect((await a.answer).status).toBeGreaterThanOrEqual(500);
    expect((await a.s.status()).json).toMatchObject({ sync_enabled: true });
  });
  it('with nobody switching meanwhile, the switch is undone all the same: the platform retry switches it on', async () => {
    const a = await switchOnStalledPastLease();
    a.fail();
    expect((await a.answer).status).toBeGreaterThanOrEqual(500);
    expect((await a.s.status()).json).toMatchObject({ sync_enabled: false });
    // Maestrano retries the request it got a 5xx for: it wants the sync on.
    expect(await a.s.toggle()).toMatchObject({ status: 200, json: { sync_enabled: true } });
  });
});
