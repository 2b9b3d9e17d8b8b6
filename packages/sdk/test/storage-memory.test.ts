import { memoryAdapter, StorageConflictError, StorageError } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { describeStorageAdapter, memoryInspector } from '@org/maestrano-sdk/testing/storage';
import { memoryState } from '../src/storage/memory.js';

describeStorageAdapter({
  name: 'memory',
  async setup({ clock }) {
    const adapter = memoryAdapter({ clock });
    return {
      adapter,
      inspect: memoryInspector(adapter),
    };
  },
  async reset({ adapter }) {
    memoryState(adapter).clear();
  },
  skip: { outage: 'the memory adapter has no database connection to lose' },
});

describe('memoryAdapter specifics', () => {
  it('uses the real clock by default', async () => {
    const adapter = memoryAdapter();
    const before = Date.now();
    const { id } = await adapter.jobs.enqueue({ type: 't', payload: null });
    const after = Date.now();
    const stored = await adapter.jobs.get(id);
    expect(stored?.createdAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(stored?.createdAt.getTime()).toBeLessThanOrEqual(after);
  });

  it('keeps two adapters fully separate', async () => {
    const a = memoryAdapter();
    const b = memoryAdapter();
    expect(await a.locks.acquire('k', 'owner-a', 1_000)).toBe(true);
    expect(await b.locks.acquire('k', 'owner-b', 1_000)).toBe(true);
    expect(await memoryInspector(a).lock('k')).toMatchObject({ owner: 'owner-a' });
    expect(await memoryInspector(b).lock('k')).toMatchObject({ owner: 'owner-b' });
  });

  it('rejects every operation after close with a StorageError naming it, and stores nothing', async () => {
    const adapter = memoryAdapter();
    await adapter.close();
    const error = await adapter.idMaps
      .insert({ tenant: 't', groupId: 'g', entity: 'e', connecId: 'c', localId: null })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ adapterId: 'memory', operation: 'idMaps.insert', code: 'storage_error' });
    await expect(adapter.locks.acquire('k', 'o', 1_000)).rejects.toMatchObject({ operation: 'locks.acquire' });
    expect(memoryState(adapter).idMaps).toHaveLength(0);
    expect(memoryState(adapter).locks.size).toBe(0);
  });

  it('reports conflicts with the adapter id and operation, and no stored values beyond the ids', async () => {
    const adapter = memoryAdapter();
    const scope = { tenant: 't', groupId: 'g', entity: 'contact' };
    await adapter.idMaps.insert({ ...scope, connecId: 'c-1', localId: 'l-1', lastPushedHash: 'secret-hash' });
    const error = await adapter.idMaps.insert({ ...scope, connecId: 'c-1', localId: 'l-2' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageConflictError);
    expect(error).toMatchObject({ adapterId: 'memory', operation: 'idMaps.insert' });
    expect(String(error instanceof Error ? error.message : '')).not.toContain('secret-hash');
  });

  it('rejects a clock that returns an invalid Date with a StorageError', async () => {
    const adapter = memoryAdapter({ clock: () => new Date(Number.NaN) });
    await expect(adapter.replay.remember('t', 'a', new Date())).rejects.toBeInstanceOf(StorageError);
    expect(memoryState(adapter).replay.size).toBe(0);
  });

  it('memoryState refuses adapters it did not create', () => {
    const foreign = { ...memoryAdapter(), id: 'other' };
    expect(() => memoryState(foreign)).toThrow(TypeError);
  });
});

describe('memoryAdapter at scale', () => {
  it('reads one membership by its key, and counts a group\'s seats, without scanning the others', async () => {
    const adapter = memoryAdapter();
    for (let i = 0; i < 500; i++) await adapter.users.upsertMembership('acme', `usr-${i}`, 'cld-1', 'Member');
    await adapter.users.setMembershipStatus('acme', 'usr-7', 'cld-1', 'removed');
    // Counts the rows a scan visits (a login, a removal and a session re-check each look up one membership).
    const memberships = memoryState(adapter).memberships;
    let visited = 0;
    const values = memberships.values.bind(memberships);
    memberships.values = () => {
      const iterator = values();
      return Object.assign(Object.create(Object.getPrototypeOf(iterator)), {
        next: () => {
          const next = iterator.next();
          if (!next.done) visited++;
          return next;
        },
        [Symbol.iterator]() {
          return this;
        },
      });
    };
    expect(await adapter.users.listMemberships('acme', { uid: 'usr-3', groupId: 'cld-1' })).toMatchObject([{ uid: 'usr-3', status: 'active' }]);
    expect(await adapter.users.listMemberships('acme', { uid: 'usr-7', groupId: 'cld-1', status: 'active' })).toEqual([]);
    expect(await adapter.users.listMemberships('acme', { uid: 'usr-7', groupId: 'cld-1', status: 'removed' })).toMatchObject([{ uid: 'usr-7' }]);
    expect(await adapter.users.listMemberships('acme', { uid: 'usr-3', groupId: 'cld-2' })).toEqual([]);
    expect(await adapter.users.listMemberships('other', { uid: 'usr-3', groupId: 'cld-1' })).toEqual([]);
    expect(visited).toBe(0);
    // A seat count reads the group's own members (its index), not every membership of every tenant.
    expect(await adapter.users.seats('acme', 'cld-2')).toEqual({ active: 0, latestChange: null });
    expect(await adapter.users.seats('acme', 'cld-1', { exceptUid: 'usr-3' })).toMatchObject({ active: 498 });
    expect(await adapter.users.seats('other', 'cld-1')).toEqual({ active: 0, latestChange: null });
    expect(visited).toBe(0);
    // Still a scan for the listings (and it counts them).
    expect(await adapter.users.listMemberships('acme', { groupId: 'cld-1', status: 'active' })).toHaveLength(499);
    expect(visited).toBe(500);
  });
});
