import { expect } from 'vitest';
import type { IdMapScope } from '../../../storage/adapter.js';
import type { StorageCases } from '../types.js';
import {
  expectConflict,
  expectDate,
  expectStorageError,
  GROUP,
  needs,
  OTHER_GROUP,
  OTHER_TENANT,
  race,
  SCOPE,
  sorted,
  TENANT,
} from './helpers.js';

const OTHER_ENTITY: IdMapScope = { ...SCOPE, entity: 'invoice' };

export const idMapCases: StorageCases = {
  'insert stores a map findable by both ids, with defaults': async ({ adapter, clock }) => {
    const map = await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    expect(map).toEqual({
      ...SCOPE,
      connecId: 'c-1',
      localId: 'l-1',
      lastAppliedAt: null,
      lastPushedHash: null,
      lastReceivedHash: null,
      tombstonedAt: null,
      lastError: null,
      syncedAt: null,
      linkSubIds: null,
      createdAt: new Date(clock.ms()),
      updatedAt: new Date(clock.ms()),
    });
    expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-1' })).toEqual(map);
    expect(await adapter.idMaps.find(SCOPE, { localId: 'l-1' })).toEqual(map);
    expect(await adapter.idMaps.find(SCOPE, { connecId: 'l-1' })).toBeNull();
    expect(await adapter.idMaps.find(OTHER_ENTITY, { connecId: 'c-1' })).toBeNull();
  },

  'a local-only map gets its connecId later (push returned it)': async ({ adapter, clock }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: null, localId: 'l-1', lastPushedHash: 'h1' });
    expect(await adapter.idMaps.find(SCOPE, { localId: 'l-1' })).toMatchObject({ connecId: null, lastPushedHash: 'h1' });
    clock.advance(10);
    const updated = await adapter.idMaps.update(SCOPE, { localId: 'l-1' }, { connecId: 'c-9' });
    expect(updated).toMatchObject({ connecId: 'c-9', localId: 'l-1', lastPushedHash: 'h1' });
    expectDate(updated?.updatedAt, clock.ms());
    expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-9' })).toEqual(updated);
  },

  'a second insert with the same connecId throws StorageConflictError and stores nothing': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
      await expectConflict(adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-2' }), 'idMaps.insert');
      const rows = await inspect.idMaps(SCOPE);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ connecId: 'c-1', localId: 'l-1' });
      expect(await adapter.idMaps.find(SCOPE, { localId: 'l-2' })).toBeNull();
    },
  ),

  'a second insert with the same localId throws StorageConflictError and stores nothing': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
      await expectConflict(adapter.idMaps.insert({ ...SCOPE, connecId: 'c-2', localId: 'l-1' }), 'idMaps.insert');
      await expectConflict(adapter.idMaps.insert({ ...SCOPE, connecId: null, localId: 'l-1' }), 'idMaps.insert');
      expect(await inspect.idMaps(SCOPE)).toHaveLength(1);
      expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-2' })).toBeNull();
    },
  ),

  'uniqueness is per scope: the same ids in another entity, group or tenant are fine': async ({ adapter }) => {
    const ids = { connecId: 'c-1', localId: 'l-1' };
    await adapter.idMaps.insert({ ...SCOPE, ...ids });
    await adapter.idMaps.insert({ ...OTHER_ENTITY, ...ids });
    await adapter.idMaps.insert({ ...SCOPE, groupId: OTHER_GROUP, ...ids });
    await adapter.idMaps.insert({ ...SCOPE, tenant: OTHER_TENANT, ...ids });
    for (const scope of [SCOPE, OTHER_ENTITY, { ...SCOPE, groupId: OTHER_GROUP }, { ...SCOPE, tenant: OTHER_TENANT }]) {
      expect(await adapter.idMaps.find(scope, { connecId: 'c-1' })).toMatchObject(scope);
    }
  },

  'null ids are not unique: many maps may lack a connecId or a localId': async ({ adapter }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: null, localId: 'l-1' });
    await adapter.idMaps.insert({ ...SCOPE, connecId: null, localId: 'l-2' });
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: null });
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-2', localId: null });
    expect(await adapter.idMaps.list(SCOPE, { limit: 10 })).toHaveLength(4);
  },

  'an update onto a connecId or localId held by another map throws StorageConflictError and changes nothing': async ({
    adapter,
  }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    const second = await adapter.idMaps.insert({ ...SCOPE, connecId: null, localId: 'l-2' });
    await expectConflict(adapter.idMaps.update(SCOPE, { localId: 'l-2' }, { connecId: 'c-1' }), 'idMaps.update');
    await expectConflict(
      adapter.idMaps.update(SCOPE, { localId: 'l-2' }, { localId: 'l-1', lastPushedHash: 'x' }),
      'idMaps.update',
    );
    expect(await adapter.idMaps.find(SCOPE, { localId: 'l-2' })).toEqual(second);
    expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-1' })).toMatchObject({ localId: 'l-1' });
  },

  'update of an unknown map returns null': async ({ adapter }) => {
    expect(await adapter.idMaps.update(SCOPE, { connecId: 'nope' }, { lastPushedHash: 'h' })).toBeNull();
    expect(await adapter.idMaps.list(SCOPE, { limit: 10 })).toEqual([]);
  },

  'update patches only the given fields; null clears': async ({ adapter }) => {
    const appliedAt = new Date(Date.UTC(2030, 11, 31, 23, 59, 59, 999));
    await adapter.idMaps.insert({
      ...SCOPE,
      connecId: 'c-1',
      localId: 'l-1',
      lastAppliedAt: appliedAt,
      lastPushedHash: 'p1',
      lastReceivedHash: 'r1',
    });
    const updated = await adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, { lastPushedHash: null });
    expect(updated).toMatchObject({ lastPushedHash: null, lastReceivedHash: 'r1', localId: 'l-1' });
    expectDate(updated?.lastAppliedAt, appliedAt);
  },

  'update may clear one id (unlinking it); a patch clearing both is a StorageError and changes nothing': async ({
    adapter,
    clock,
  }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1', lastPushedHash: 'p1' });
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-2', localId: 'l-2' });
    clock.advance(10);
    const unlinked = await adapter.idMaps.update(SCOPE, { localId: 'l-1' }, { connecId: null });
    expect(unlinked).toMatchObject({ connecId: null, localId: 'l-1', lastPushedHash: 'p1' });
    expectDate(unlinked?.updatedAt, clock.ms());
    expect(await adapter.idMaps.find(SCOPE, { localId: 'l-1' })).toEqual(unlinked);
    expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-1' })).toBeNull();
    // The other id the same way, switching the connecId in the same patch.
    expect(await adapter.idMaps.update(SCOPE, { connecId: 'c-2' }, { connecId: 'c-3', localId: null })).toMatchObject({
      connecId: 'c-3',
      localId: null,
    });
    const before = await adapter.idMaps.find(SCOPE, { localId: 'l-1' });
    clock.advance(10);
    await expectStorageError(adapter.idMaps.update(SCOPE, { localId: 'l-1' }, { localId: null }), 'idMaps.update');
    await expectStorageError(
      adapter.idMaps.update(SCOPE, { connecId: 'c-3' }, { connecId: null, lastPushedHash: 'x' }),
      'idMaps.update',
    );
    expect(await adapter.idMaps.find(SCOPE, { localId: 'l-1' })).toEqual(before);
    expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-3' })).toMatchObject({ localId: null, lastPushedHash: null });
  },

  'findManyByConnecIds returns the present maps of the scope only': async ({ adapter }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-2', localId: 'l-2' });
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-3', localId: 'l-3' });
    await adapter.idMaps.insert({ ...OTHER_ENTITY, connecId: 'c-4', localId: 'l-4' });
    const found = await adapter.idMaps.findManyByConnecIds(SCOPE, ['c-3', 'c-1', 'missing', 'c-4']);
    expect(sorted(found, (m) => m.connecId ?? '').map((m) => [m.connecId, m.localId])).toEqual([
      ['c-1', 'l-1'],
      ['c-3', 'l-3'],
    ]);
    expect(await adapter.idMaps.findManyByConnecIds(SCOPE, [])).toEqual([]);
  },

  'markApplied moves forward only: null, newer and same-instant other content apply; the same version and stale are refused': async ({ adapter }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    const t1 = new Date(Date.UTC(2031, 0, 1, 0, 0, 0, 1));
    const t2 = new Date(Date.UTC(2031, 0, 1, 0, 0, 0, 2));
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t1, 'h1')).toBe(true);
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t2, 'h2')).toBe(true);
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t2, 'h2')).toBe(false);
    expect(await adapter.idMaps.markApplied(SCOPE, { localId: 'l-1' }, t1, 'h-stale')).toBe(false);
    let map = await adapter.idMaps.find(SCOPE, { connecId: 'c-1' });
    expectDate(map?.lastAppliedAt, t2);
    expect(map?.lastReceivedHash).toBe('h2');
    // Another content stamped with the same instant (two edits in one second) applies once.
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t2, 'h2-bis')).toBe(true);
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t2, 'h2-bis')).toBe(false);
    map = await adapter.idMaps.find(SCOPE, { connecId: 'c-1' });
    expectDate(map?.lastAppliedAt, t2);
    expect(map?.lastReceivedHash).toBe('h2-bis');
  },

  'syncedAt: insert and insertMany store the given instant (null by default); update sets and clears it': async ({ adapter, clock }) => {
    const syncedAt = new Date(Date.UTC(2031, 1, 2, 3, 4, 5, 6));
    const map = await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1', syncedAt });
    expectDate(map.syncedAt, syncedAt);
    expectDate((await adapter.idMaps.find(SCOPE, { localId: 'l-1' }))?.syncedAt, syncedAt);
    const [synced, plain] = await adapter.idMaps.insertMany([
      { ...SCOPE, connecId: 'c-2', localId: 'l-2', syncedAt },
      { ...SCOPE, connecId: 'c-3', localId: null },
    ]);
    expectDate(synced?.syncedAt, syncedAt);
    expect(plain?.syncedAt).toBeNull();
    expectDate((await adapter.idMaps.find(SCOPE, { connecId: 'c-2' }))?.syncedAt, syncedAt);
    expect((await adapter.idMaps.find(SCOPE, { connecId: 'c-3' }))?.syncedAt).toBeNull();
    clock.advance(10);
    const linkedAt = new Date(clock.ms());
    const linked = await adapter.idMaps.update(SCOPE, { connecId: 'c-3' }, { localId: 'l-3', syncedAt: linkedAt });
    expectDate(linked?.syncedAt, linkedAt);
    expectDate((await adapter.idMaps.find(SCOPE, { localId: 'l-3' }))?.syncedAt, linkedAt);
    const cleared = await adapter.idMaps.update(SCOPE, { localId: 'l-3' }, { syncedAt: null });
    expect(cleared?.syncedAt).toBeNull();
    expect((await adapter.idMaps.find(SCOPE, { localId: 'l-3' }))?.syncedAt).toBeNull();
  },

  'linkSubIds: insert and insertMany store the given text as given (null by default); update sets and clears it': async ({ adapter }) => {
    // Opaque text the engine writes (JSON of the sub-record ids a link-back owes): any text round-trips unchanged.
    const owed = JSON.stringify({ hash: 'in:h1', ids: { lines: ['ln-1', null, 'ln-\u00e9'], 'details/rows': [] } });
    const map = await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1', linkSubIds: owed });
    expect(map.linkSubIds).toBe(owed);
    expect((await adapter.idMaps.find(SCOPE, { localId: 'l-1' }))?.linkSubIds).toBe(owed);
    const [withIds, plain] = await adapter.idMaps.insertMany([
      { ...SCOPE, connecId: 'c-2', localId: 'l-2', linkSubIds: owed },
      { ...SCOPE, connecId: 'c-3', localId: 'l-3' },
    ]);
    expect(withIds?.linkSubIds).toBe(owed);
    expect(plain?.linkSubIds).toBeNull();
    expect((await adapter.idMaps.find(SCOPE, { connecId: 'c-2' }))?.linkSubIds).toBe(owed);
    expect((await adapter.idMaps.find(SCOPE, { connecId: 'c-3' }))?.linkSubIds).toBeNull();
    expect((await adapter.idMaps.findManyByConnecIds(SCOPE, ['c-1', 'c-3'])).map((m) => m.linkSubIds).sort()).toEqual([owed, null].sort());
    const set = await adapter.idMaps.update(SCOPE, { connecId: 'c-3' }, { linkSubIds: 'x' });
    expect(set?.linkSubIds).toBe('x');
    // A patch without it leaves it.
    expect((await adapter.idMaps.update(SCOPE, { connecId: 'c-3' }, { lastPushedHash: 'p' }))?.linkSubIds).toBe('x');
    const cleared = await adapter.idMaps.update(SCOPE, { connecId: 'c-3' }, { linkSubIds: null });
    expect(cleared?.linkSubIds).toBeNull();
    expect((await adapter.idMaps.find(SCOPE, { localId: 'l-3' }))?.linkSubIds).toBeNull();
  },

  'markApplied stores options.linkSubIds with an applied version; without it, or for a refused version, it stays': async ({ adapter }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1', linkSubIds: 'first' });
    const t1 = new Date(Date.UTC(2031, 0, 1, 0, 0, 0, 1));
    const t2 = new Date(Date.UTC(2031, 0, 1, 0, 0, 0, 2));
    const t3 = new Date(Date.UTC(2031, 0, 1, 0, 0, 0, 3));
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t1, 'h1')).toBe(true);
    expect((await adapter.idMaps.find(SCOPE, { connecId: 'c-1' }))?.linkSubIds).toBe('first');
    expect(await adapter.idMaps.markApplied(SCOPE, { localId: 'l-1' }, t2, 'h2', { linkSubIds: 'second', inSync: false })).toBe(true);
    expect((await adapter.idMaps.find(SCOPE, { connecId: 'c-1' }))?.linkSubIds).toBe('second');
    // Refused versions change nothing.
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t2, 'h2', { linkSubIds: 'same version' })).toBe(false);
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t1, 'h0', { linkSubIds: 'older' })).toBe(false);
    expect((await adapter.idMaps.find(SCOPE, { connecId: 'c-1' }))?.linkSubIds).toBe('second');
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t3, 'h3', { linkSubIds: null })).toBe(true);
    expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-1' })).toMatchObject({ lastReceivedHash: 'h3', linkSubIds: null });
  },

  'markApplied sets syncedAt to the adapter clock; inSync false and refused versions leave it': async ({ adapter, clock }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    const t1 = new Date(Date.UTC(2031, 0, 1, 0, 0, 0, 1));
    const t2 = new Date(Date.UTC(2031, 0, 1, 0, 0, 0, 2));
    const t3 = new Date(Date.UTC(2031, 0, 1, 0, 0, 0, 3));
    clock.advance(1_000);
    const syncedAt = clock.ms();
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t1, 'h1')).toBe(true);
    let map = await adapter.idMaps.find(SCOPE, { connecId: 'c-1' });
    expectDate(map?.syncedAt, syncedAt);
    expectDate(map?.updatedAt, syncedAt);
    // Acknowledged without being written locally: the version moves, syncedAt does not.
    clock.advance(1_000);
    expect(await adapter.idMaps.markApplied(SCOPE, { localId: 'l-1' }, t2, 'h2', { inSync: false })).toBe(true);
    map = await adapter.idMaps.find(SCOPE, { connecId: 'c-1' });
    expectDate(map?.lastAppliedAt, t2);
    expect(map?.lastReceivedHash).toBe('h2');
    expectDate(map?.updatedAt, clock.ms());
    expectDate(map?.syncedAt, syncedAt);
    // Refused versions change nothing.
    clock.advance(1_000);
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t2, 'h2')).toBe(false);
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t1, 'h-stale', { inSync: true })).toBe(false);
    expectDate((await adapter.idMaps.find(SCOPE, { connecId: 'c-1' }))?.syncedAt, syncedAt);
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, t3, 'h3', { inSync: true })).toBe(true);
    expectDate((await adapter.idMaps.find(SCOPE, { connecId: 'c-1' }))?.syncedAt, clock.ms());
  },

  'updates that only record an error or a tombstone move updatedAt, not syncedAt': async ({ adapter, clock }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    clock.advance(5);
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, new Date(Date.UTC(2031, 0, 1)), 'h1')).toBe(true);
    const syncedAt = clock.ms();
    clock.advance(1_000);
    const failed = await adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, {
      lastError: { code: 'http_503', message: 'Service Unavailable', at: new Date(clock.ms()) },
    });
    expectDate(failed?.updatedAt, clock.ms());
    expectDate(failed?.syncedAt, syncedAt);
    clock.advance(1_000);
    const cleared = await adapter.idMaps.update(SCOPE, { localId: 'l-1' }, { lastError: null });
    expectDate(cleared?.updatedAt, clock.ms());
    expectDate(cleared?.syncedAt, syncedAt);
    clock.advance(1_000);
    const tombstoned = await adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, { tombstonedAt: new Date(clock.ms()) });
    expectDate(tombstoned?.updatedAt, clock.ms());
    expectDate(tombstoned?.syncedAt, syncedAt);
    expectDate((await adapter.idMaps.find(SCOPE, { localId: 'l-1' }))?.syncedAt, syncedAt);
  },

  'markApplied of an unknown map returns false and creates nothing': async ({ adapter }) => {
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-x' }, new Date(Date.UTC(2031, 0, 1)), 'h')).toBe(false);
    expect(await adapter.idMaps.list(SCOPE, { limit: 10 })).toEqual([]);
  },

  'clearError clears the error it is given, by either id, moving updatedAt (not syncedAt), once': async ({ adapter, clock }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-2', localId: 'l-2' });
    expect(await adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, new Date(Date.UTC(2031, 0, 1)), 'h1')).toBe(true);
    const syncedAt = clock.ms();
    clock.advance(1_000);
    const error = { code: 'poisoned', message: 'the job kept killing its worker', at: new Date(clock.ms() - 1) };
    await adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, { lastError: error });
    await adapter.idMaps.update(SCOPE, { connecId: 'c-2' }, { lastError: error });
    clock.advance(1_000);
    expect(await adapter.idMaps.clearError(SCOPE, { connecId: 'c-1' }, error)).toBe(true);
    const cleared = await adapter.idMaps.find(SCOPE, { localId: 'l-1' });
    expect(cleared?.lastError).toBeNull();
    expectDate(cleared?.updatedAt, clock.ms());
    expectDate(cleared?.syncedAt, syncedAt);
    expect(cleared?.lastReceivedHash).toBe('h1');
    // The other map keeps its error until it is cleared itself (here by its local id).
    expect((await adapter.idMaps.find(SCOPE, { connecId: 'c-2' }))?.lastError).toEqual(error);
    expect(await adapter.idMaps.clearError(SCOPE, { localId: 'l-2' }, { ...error, at: new Date(error.at.getTime()) })).toBe(true);
    expect((await adapter.idMaps.find(SCOPE, { connecId: 'c-2' }))?.lastError).toBeNull();
    clock.advance(1_000);
    expect(await adapter.idMaps.clearError(SCOPE, { connecId: 'c-1' }, error)).toBe(false);
    expectDate((await adapter.idMaps.find(SCOPE, { connecId: 'c-1' }))?.updatedAt, clock.ms() - 1_000);
  },

  'clearError matches a long error as update recorded it, given as written or as read back': async ({ adapter, clock }) => {
    // An adapter may cut recorded text (MongoDB keeps a document within its size limit): the
    // error as read back, which the sync engine passes, and the error as written both match
    // (so would a code differing only past the cut: compared as stored).
    const code = `http_${'9'.repeat(4_000)}é`;
    for (const [index, readBack] of [false, true].entries()) {
      const connecId = `c-${index}`;
      await adapter.idMaps.insert({ ...SCOPE, connecId, localId: `l-${index}` });
      const written = { code, message: 'x'.repeat(100_000), at: new Date(Date.UTC(2031, 0, 1, 0, 0, 0, 7)) };
      await adapter.idMaps.update(SCOPE, { connecId }, { lastError: written });
      const stored = (await adapter.idMaps.find(SCOPE, { connecId }))?.lastError;
      clock.advance(1_000);
      expect(await adapter.idMaps.clearError(SCOPE, { connecId }, { ...written, code: `x${code}` })).toBe(false);
      expect(await adapter.idMaps.clearError(SCOPE, { connecId }, readBack && stored ? stored : written)).toBe(true);
      expect((await adapter.idMaps.find(SCOPE, { connecId }))?.lastError).toBeNull();
    }
  },

  'clearError leaves another error (another instant or code) as it is, and returns false': async ({ adapter, clock }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    const poisoned = { code: 'poisoned', message: 'the job kept killing its worker', at: new Date(clock.ms()) };
    await adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, { lastError: poisoned });
    // Recorded after the caller read the map: a failed push of the record.
    clock.advance(5);
    const failed = { code: 'http_503', message: 'Service Unavailable', at: new Date(clock.ms()) };
    const recorded = await adapter.idMaps.update(SCOPE, { localId: 'l-1' }, { lastError: failed });
    clock.advance(1_000);
    expect(await adapter.idMaps.clearError(SCOPE, { connecId: 'c-1' }, poisoned)).toBe(false);
    expect(await adapter.idMaps.clearError(SCOPE, { connecId: 'c-1' }, { ...failed, at: new Date(failed.at.getTime() + 1) })).toBe(false);
    expect(await adapter.idMaps.clearError(SCOPE, { connecId: 'c-1' }, { ...failed, at: new Date(failed.at.getTime() - 1) })).toBe(false);
    expect(await adapter.idMaps.clearError(SCOPE, { connecId: 'c-1' }, { ...failed, code: 'http_502' })).toBe(false);
    expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-1' })).toEqual(recorded);
    // Other maps of the same ids are not touched.
    await adapter.idMaps.insert({ ...OTHER_ENTITY, connecId: 'c-1', localId: 'l-1' });
    await adapter.idMaps.update(OTHER_ENTITY, { connecId: 'c-1' }, { lastError: failed });
    expect(await adapter.idMaps.clearError(SCOPE, { connecId: 'c-1' }, failed)).toBe(true);
    expect((await adapter.idMaps.find(OTHER_ENTITY, { connecId: 'c-1' }))?.lastError).toEqual(failed);
  },

  'clearError of a map without an error, or of an unknown map, returns false and changes nothing': async ({ adapter, clock }) => {
    const map = await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    const error = { code: 'poisoned', message: 'x', at: new Date(clock.ms()) };
    clock.advance(1_000);
    expect(await adapter.idMaps.clearError(SCOPE, { connecId: 'c-1' }, error)).toBe(false);
    expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-1' })).toEqual(map);
    expect(await adapter.idMaps.clearError(SCOPE, { connecId: 'c-x' }, error)).toBe(false);
    expect(await adapter.idMaps.clearError(SCOPE, { localId: 'l-x' }, error)).toBe(false);
    expect(await adapter.idMaps.list(SCOPE, { limit: 10 })).toEqual([map]);
  },

  'clearError racing writes of newer errors never loses one': needs(['concurrency'], async (context) => {
    await context.adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    for (let round = 0; round < 5; round++) {
      const read = { code: 'poisoned', message: `round ${round}`, at: new Date(Date.UTC(2031, 0, 1, 0, 0, round)) };
      await context.adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, { lastError: read });
      await race(context, 10, async (adapter, i) => {
        if (i % 2 === 0) await adapter.idMaps.clearError(SCOPE, { connecId: 'c-1' }, read);
        else await adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, { lastError: { code: 'http_503', message: `push ${i}`, at: new Date(read.at.getTime() + i) } });
      });
      // Once a newer error is stored the one read is never stored again: whichever order the
      // writes ran in, one of the newer errors is left.
      expect((await context.adapter.idMaps.find(SCOPE, { connecId: 'c-1' }))?.lastError?.code).toBe('http_503');
    }
  }),

  '20 concurrent markApplied of versions 1..20 end at the newest': needs(['concurrency'], async (context) => {
    await context.adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    const base = Date.UTC(2031, 0, 1);
    const order = Array.from({ length: 20 }, (_, i) => (i * 7) % 20);
    const results = await race(context, 20, (adapter, i) =>
      adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, new Date(base + (order[i] ?? 0)), `h${order[i]}`),
    );
    expect(results.filter(Boolean).length).toBeGreaterThanOrEqual(1);
    const map = await context.adapter.idMaps.find(SCOPE, { connecId: 'c-1' });
    expectDate(map?.lastAppliedAt, base + 19);
    expect(map?.lastReceivedHash).toBe('h19');
  }),

  '20 concurrent inserts of one connecId: exactly one succeeds, the rest conflict': needs(
    ['concurrency'],
    async (context) => {
      const results = await race(context, 20, (adapter, i) =>
        adapter.idMaps.insert({ ...SCOPE, connecId: 'c-race', localId: `l-${i}` }).then(
          () => 'ok' as const,
          (error: unknown) => error,
        ),
      );
      expect(results.filter((r) => r === 'ok')).toHaveLength(1);
      for (const error of results.filter((r) => r !== 'ok')) {
        expect(error).toMatchObject({ code: 'storage_conflict', operation: 'idMaps.insert' });
      }
      expect(await context.adapter.idMaps.list(SCOPE, { limit: 50 })).toHaveLength(1);
    },
  ),

  'tombstone and lastError round-trip, with Dates as Dates': async ({ adapter }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    const at = new Date(Date.UTC(2031, 3, 4, 5, 6, 7, 89));
    const tombstonedAt = new Date(Date.UTC(2031, 3, 5, 0, 0, 0, 1));
    await adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, {
      lastError: { code: 'validation_failed', message: 'name is required', at },
      tombstonedAt,
    });
    const map = await adapter.idMaps.find(SCOPE, { localId: 'l-1' });
    expect(map?.lastError).toEqual({ code: 'validation_failed', message: 'name is required', at });
    expectDate(map?.lastError?.at, at);
    expectDate(map?.tombstonedAt, tombstonedAt);
    const cleared = await adapter.idMaps.update(SCOPE, { localId: 'l-1' }, { lastError: null });
    expect(cleared?.lastError).toBeNull();
    expectDate(cleared?.tombstonedAt, tombstonedAt);
  },

  'stored rows hold timestamps, not strings': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    const appliedAt = new Date(Date.UTC(2031, 0, 2, 3, 4, 5, 678));
    const syncedAt = new Date(Date.UTC(2031, 0, 2, 3, 4, 6, 789));
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1', lastAppliedAt: appliedAt, lastReceivedHash: 'r', syncedAt, linkSubIds: '{"hash":"r"}' });
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-2', localId: 'l-2' });
    const [row, unsynced] = sorted(await inspect.idMaps(SCOPE), (m) => String(m.connecId));
    expect(row).toMatchObject({ ...SCOPE, connecId: 'c-1', localId: 'l-1', lastReceivedHash: 'r', lastPushedHash: null });
    expectDate(row?.lastAppliedAt, appliedAt);
    expectDate(row?.syncedAt, syncedAt);
    expect(unsynced?.syncedAt).toBeNull();
    expectDate(row?.createdAt, clock.ms());
    expectDate(row?.updatedAt, clock.ms());
    expect(row?.tombstonedAt).toBeNull();
    expect(row?.lastError).toBeNull();
    expect(row?.linkSubIds).toBe('{"hash":"r"}');
    expect(unsynced?.linkSubIds).toBeNull();
  }),

  'values are copied: mutating the input or a result changes nothing stored': async ({ adapter }) => {
    const lastAppliedAt = new Date(Date.UTC(2031, 0, 1));
    const input = { ...SCOPE, connecId: 'c-1', localId: 'l-1', lastAppliedAt };
    const map = await adapter.idMaps.insert(input);
    lastAppliedAt.setUTCFullYear(2000);
    input.localId = 'changed';
    map.lastAppliedAt?.setUTCFullYear(1999);
    const stored = await adapter.idMaps.find(SCOPE, { connecId: 'c-1' });
    expect(stored?.localId).toBe('l-1');
    expectDate(stored?.lastAppliedAt, Date.UTC(2031, 0, 1));
  },

  'list pages through one scope in creation order': async ({ adapter, clock }) => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      clock.advance(1);
      const connecId = i % 3 === 2 ? null : `c-${String.fromCharCode(122 - i)}`;
      const localId = `l-${i}`;
      await adapter.idMaps.insert({ ...SCOPE, connecId, localId });
      ids.push(connecId ?? localId);
    }
    await adapter.idMaps.insert({ ...OTHER_ENTITY, connecId: 'c-other', localId: 'l-other' });
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page++) {
      const rows = await adapter.idMaps.list(SCOPE, after === undefined ? { limit: 3 } : { limit: 3, after });
      if (rows.length === 0) break;
      expect(rows.length).toBeLessThanOrEqual(3);
      for (const row of rows) seen.push(row.connecId ?? row.localId ?? '');
      after = seen[seen.length - 1];
    }
    expect(seen).toEqual(ids);
  },

  'list pages with after = the connecId of maps holding both ids, and the localId of local-only ones': async ({ adapter, clock }) => {
    const seen: string[] = [];
    for (const [connecId, localId] of [['c-1', 'l-1'], [null, 'l-2'], ['c-3', 'l-3'], ['c-4', null]] as const) {
      clock.advance(1);
      await adapter.idMaps.insert({ ...SCOPE, connecId, localId });
    }
    let after: string | undefined;
    for (let page = 0; page < 10; page++) {
      const rows = await adapter.idMaps.list(SCOPE, after === undefined ? { limit: 1 } : { limit: 1, after });
      if (rows.length === 0) break;
      for (const row of rows) seen.push(row.connecId ?? row.localId ?? '');
      after = seen[seen.length - 1];
    }
    expect(seen).toEqual(['c-1', 'l-2', 'c-3', 'c-4']);
  },

  'find, update and markApplied only reach maps of the given scope, by either id': async ({ adapter }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    for (const scope of [OTHER_ENTITY, { ...SCOPE, groupId: OTHER_GROUP }, { ...SCOPE, tenant: OTHER_TENANT }]) {
      expect(await adapter.idMaps.find(scope, { connecId: 'c-1' })).toBeNull();
      expect(await adapter.idMaps.find(scope, { localId: 'l-1' })).toBeNull();
      expect(await adapter.idMaps.update(scope, { localId: 'l-1' }, { lastPushedHash: 'h-x' })).toBeNull();
      expect(await adapter.idMaps.update(scope, { connecId: 'c-1' }, { lastPushedHash: 'h-x' })).toBeNull();
      expect(await adapter.idMaps.markApplied(scope, { localId: 'l-1' }, new Date(Date.UTC(2031, 0, 1)), 'in:h')).toBe(false);
      expect(await adapter.idMaps.findManyByConnecIds(scope, ['c-1'])).toEqual([]);
    }
    expect(await adapter.idMaps.find(SCOPE, { localId: 'l-1' })).toMatchObject({
      connecId: 'c-1',
      lastPushedHash: null,
      lastAppliedAt: null,
      lastReceivedHash: null,
    });
  },

  'purgeGroup removes every map of one group and returns the count': needs(['inspect'], async ({ adapter, inspect }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-2', localId: 'l-2' });
    await adapter.idMaps.insert({ ...OTHER_ENTITY, connecId: 'c-3', localId: 'l-3' });
    await adapter.idMaps.insert({ ...SCOPE, groupId: OTHER_GROUP, connecId: 'c-4', localId: 'l-4' });
    await adapter.idMaps.insert({ ...SCOPE, tenant: OTHER_TENANT, connecId: 'c-5', localId: 'l-5' });
    expect(await adapter.idMaps.purgeGroup(TENANT, GROUP)).toBe(3);
    expect(await inspect.idMaps(SCOPE)).toEqual([]);
    expect(await inspect.idMaps(OTHER_ENTITY)).toEqual([]);
    expect(await inspect.idMaps({ ...SCOPE, groupId: OTHER_GROUP })).toHaveLength(1);
    expect(await inspect.idMaps({ ...SCOPE, tenant: OTHER_TENANT })).toHaveLength(1);
    expect(await adapter.idMaps.purgeGroup(TENANT, GROUP)).toBe(0);
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
  }),

  'an insert with neither connecId nor localId is rejected with StorageError and stores nothing': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      await expectStorageError(adapter.idMaps.insert({ ...SCOPE, connecId: null, localId: null }), 'idMaps.insert');
      expect(await inspect.idMaps(SCOPE)).toEqual([]);
    },
  ),

  'insertMany stores each new map in input order and returns null for every conflicting entry': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
      const at = new Date('2026-03-01T10:00:00.000Z');
      const results = await adapter.idMaps.insertMany([
        { ...SCOPE, connecId: 'c-2', localId: 'l-2', lastAppliedAt: at, lastReceivedHash: 'h-2' },
        { ...SCOPE, connecId: 'c-1', localId: 'l-9' },
        { ...SCOPE, connecId: 'c-9', localId: 'l-1' },
        { ...SCOPE, connecId: 'c-3', localId: null },
        { ...SCOPE, connecId: 'c-3', localId: 'l-3' },
        { ...OTHER_ENTITY, connecId: 'c-1', localId: 'l-1' },
        { ...SCOPE, connecId: null, localId: 'l-4', lastPushedHash: 'p-4' },
      ]);
      expect(results.map((r) => (r ? `${r.entity}:${r.connecId}:${r.localId}` : null))).toEqual([
        'contact:c-2:l-2',
        null,
        null,
        'contact:c-3:null',
        null,
        'invoice:c-1:l-1',
        'contact:null:l-4',
      ]);
      expectDate(results[0]?.lastAppliedAt, at);
      expect(results[0]).toMatchObject({ lastReceivedHash: 'h-2', lastPushedHash: null, tombstonedAt: null, lastError: null });
      expect(results[6]).toMatchObject({ lastPushedHash: 'p-4', lastAppliedAt: null });
      const stored = sorted(await inspect.idMaps(SCOPE), (m) => `${m.connecId}:${m.localId}`);
      expect(stored.map((m) => `${m.connecId}:${m.localId}`)).toEqual(['c-1:l-1', 'c-2:l-2', 'c-3:null', 'null:l-4']);
      expect((await adapter.idMaps.find(SCOPE, { connecId: 'c-2' }))?.localId).toBe('l-2');
      expect(await adapter.idMaps.insertMany([])).toEqual([]);
    },
  ),

  'insertMany stores several maps without a connecId in one call (creates about to be pushed)': async ({ adapter }) => {
    await adapter.idMaps.insert({ ...SCOPE, connecId: null, localId: 'l-0' });
    const results = await adapter.idMaps.insertMany([
      { ...SCOPE, connecId: null, localId: 'l-1' },
      { ...SCOPE, connecId: null, localId: 'l-2' },
      { ...SCOPE, connecId: null, localId: 'l-0' },
      { ...SCOPE, connecId: null, localId: 'l-3' },
    ]);
    expect(results.map((r) => r?.localId ?? null)).toEqual(['l-1', 'l-2', null, 'l-3']);
    for (const localId of ['l-0', 'l-1', 'l-2', 'l-3']) expect(await adapter.idMaps.find(SCOPE, { localId })).toMatchObject({ connecId: null, localId });
  },

  'insertMany with an invalid entry is rejected with StorageError and stores nothing': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      await expectStorageError(
        adapter.idMaps.insertMany([
          { ...SCOPE, connecId: 'c-1', localId: 'l-1' },
          { ...SCOPE, connecId: null, localId: null },
        ]),
        'idMaps.insertMany',
      );
      expect(await inspect.idMaps(SCOPE)).toEqual([]);
    },
  ),

  'concurrent insertMany of overlapping batches: each map is stored once and returned to exactly one caller': needs(
    ['concurrency'],
    async (context) => {
      const batch = (offset: number) =>
        Array.from({ length: 20 }, (_, i) => ({ ...SCOPE, connecId: `c-${i + offset}`, localId: `l-${i + offset}` }));
      const results = await race(context, 6, (adapter, index) => adapter.idMaps.insertMany(batch((index % 3) * 10)));
      const won = results.flat().filter((r) => r !== null).map((r) => r?.connecId);
      expect(won.length).toBe(40);
      expect(new Set(won).size).toBe(40);
      const found = await context.adapter.idMaps.findManyByConnecIds(SCOPE, Array.from({ length: 40 }, (_, i) => `c-${i}`));
      expect(found).toHaveLength(40);
    },
  ),
};
