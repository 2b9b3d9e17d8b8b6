import { expect } from 'vitest';
import type { CursorKey } from '../../../storage/adapter.js';
import type { StorageCases } from '../types.js';
import { expectDate, expectStorageError, GROUP, needs, OTHER_GROUP, race, SCOPE, TENANT } from './helpers.js';

const KEY: CursorKey = { ...SCOPE, kind: 'import' };

export const cursorCases: StorageCases = {
  'get returns null for an unknown cursor': async ({ adapter }) => {
    expect(await adapter.cursors.get(KEY)).toBeNull();
  },

  'the first advance creates the cursor with its data; complete defaults to false': async ({ adapter, clock }) => {
    const data = { next: '/api/v2/org-1/contacts?$skip=100', skip: 100, seen: ['a', 'b'], extra: null };
    expect(await adapter.cursors.advance(KEY, 100, data)).toBe(true);
    expect(await adapter.cursors.get(KEY)).toEqual({ ...KEY, position: 100, data, complete: false, updatedAt: new Date(clock.ms()) });
  },

  'advance moves forward only: greater writes, equal and smaller are refused and change nothing': async ({
    adapter,
    clock,
  }) => {
    await adapter.cursors.advance(KEY, 10, { page: 1 });
    clock.advance(100);
    expect(await adapter.cursors.advance(KEY, 20, { page: 2 })).toBe(true);
    const at = clock.ms();
    clock.advance(100);
    expect(await adapter.cursors.advance(KEY, 20, { page: 'equal' })).toBe(false);
    expect(await adapter.cursors.advance(KEY, 5, { page: 'back' })).toBe(false);
    expect(await adapter.cursors.advance(KEY, 19, { page: 'back' }, true)).toBe(false);
    const cursor = await adapter.cursors.get(KEY);
    expect(cursor).toMatchObject({ position: 20, data: { page: 2 }, complete: false });
    expectDate(cursor?.updatedAt, at);
  },

  'an equal position may only turn complete to true, once': async ({ adapter }) => {
    await adapter.cursors.advance(KEY, 50, { page: 5 });
    expect(await adapter.cursors.advance(KEY, 50, { page: 'done' }, true)).toBe(true);
    expect(await adapter.cursors.get(KEY)).toMatchObject({ position: 50, complete: true, data: { page: 'done' } });
    expect(await adapter.cursors.advance(KEY, 50, { page: 'again' }, true)).toBe(false);
    expect(await adapter.cursors.advance(KEY, 50, { page: 'undo' }, false)).toBe(false);
    expect(await adapter.cursors.get(KEY)).toMatchObject({ complete: true, data: { page: 'done' } });
  },

  'timestamp positions in ms are stored exactly': async ({ adapter }) => {
    const position = Date.UTC(2031, 6, 1, 12, 0, 0, 999);
    expect(await adapter.cursors.advance(KEY, position, { updatedSince: '2031-07-01T12:00:00.999Z' })).toBe(true);
    expect((await adapter.cursors.get(KEY))?.position).toBe(position);
    expect(await adapter.cursors.advance(KEY, position - 1, {})).toBe(false);
  },

  'reset deletes the cursor so an import can restart from zero': async ({ adapter }) => {
    await adapter.cursors.advance(KEY, 500, { page: 50 }, true);
    await adapter.cursors.reset(KEY);
    expect(await adapter.cursors.get(KEY)).toBeNull();
    expect(await adapter.cursors.advance(KEY, 1, { page: 1 })).toBe(true);
    expect(await adapter.cursors.get(KEY)).toMatchObject({ position: 1, complete: false });
    await adapter.cursors.reset({ ...KEY, kind: 'never-written' });
  },

  'reset deletes only its own cursor: other kinds, entities and groups keep theirs': async ({ adapter }) => {
    await adapter.cursors.advance(KEY, 1, { k: 'import' });
    await adapter.cursors.advance({ ...KEY, kind: 'incremental' }, 2, { k: 'incremental' });
    await adapter.cursors.advance({ ...KEY, entity: 'invoice' }, 3, { k: 'invoice' });
    await adapter.cursors.advance({ ...KEY, groupId: OTHER_GROUP }, 4, { k: 'other group' });
    await adapter.cursors.reset(KEY);
    expect(await adapter.cursors.get(KEY)).toBeNull();
    expect((await adapter.cursors.list(TENANT, GROUP)).map((c) => `${c.entity}/${c.kind}=${c.position}`).sort()).toEqual([
      'contact/incremental=2',
      'invoice/import=3',
    ]);
    expect((await adapter.cursors.list(TENANT, OTHER_GROUP)).map((c) => c.position)).toEqual([4]);
  },

  'kinds, entities and groups have independent cursors; list returns one group': async ({ adapter }) => {
    await adapter.cursors.advance(KEY, 1, { k: 'import' });
    await adapter.cursors.advance({ ...KEY, kind: 'incremental' }, 2, { k: 'incremental' });
    await adapter.cursors.advance({ ...KEY, entity: 'invoice' }, 3, { k: 'invoice' });
    await adapter.cursors.advance({ ...KEY, groupId: OTHER_GROUP }, 4, { k: 'other group' });
    const list = await adapter.cursors.list(TENANT, GROUP);
    const summary = list.map((c) => `${c.entity}/${c.kind}=${c.position}`).sort();
    expect(summary).toEqual(['contact/import=1', 'contact/incremental=2', 'invoice/import=3']);
    expect((await adapter.cursors.list(TENANT, OTHER_GROUP)).map((c) => c.position)).toEqual([4]);
  },

  '20 concurrent advances end at the greatest position': needs(['concurrency'], async (context) => {
    const positions = Array.from({ length: 20 }, (_, i) => ((i * 13) % 20) + 1);
    const results = await race(context, 20, (adapter, i) =>
      adapter.cursors.advance(KEY, positions[i] ?? 0, { at: positions[i] ?? 0 }),
    );
    expect(results.filter(Boolean).length).toBeGreaterThanOrEqual(1);
    expect(await context.adapter.cursors.get(KEY)).toMatchObject({ position: 20, data: { at: 20 } });
  }),

  'the stored cursor holds a number, JSON data, a boolean and a timestamp': needs(
    ['inspect'],
    async ({ adapter, inspect, clock }) => {
      const data = { next: null, nested: { list: [1, 'two', false] } };
      await adapter.cursors.advance(KEY, 1234567890123, data, true);
      const row = await inspect.cursor(KEY);
      expect(row).toMatchObject({ ...KEY, position: 1234567890123, complete: true });
      expect(row?.data).toEqual(data);
      expectDate(row?.updatedAt, clock.ms());
    },
  ),

  'a non-finite position is rejected with StorageError and stores nothing': async ({ adapter }) => {
    await expectStorageError(adapter.cursors.advance(KEY, Number.NaN, {}), 'cursors.advance');
    await expectStorageError(adapter.cursors.advance(KEY, Number.POSITIVE_INFINITY, {}), 'cursors.advance');
    expect(await adapter.cursors.get(KEY)).toBeNull();
  },
};
