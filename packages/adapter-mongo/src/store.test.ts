import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, unavailable } from '../test/support.js';
import type { Stored } from './documents.js';
import { Store } from './store.js';

if (unavailable) console.warn(`[adapter-mongo] store.test.ts skipped: ${unavailable}`);

describe.skipIf(unavailable !== null)('Store compare-and-set', () => {
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  beforeAll(async () => {
    handle = await openTestDb('store');
  });
  afterAll(async () => {
    await handle?.drop();
  });

  for (const guard of ['always', 'never'] as const) {
    it(`a writer holding a stale revision never overwrites a newer one (guard: ${guard})`, async () => {
      const store = new Store(handle.db, { prefix: `${guard}_`, clock: () => new Date(), guard, guardTimeoutMs: 30_000 });
      const inserted = await store.insert('locks', { _id: 'k', owner: 'a', n: 1 });
      const stale: Stored = { ...inserted };
      const second = await store.casUpdate('locks', inserted, { owner: 'b', n: 2 });
      expect(second).toMatchObject({ owner: 'b', n: 2 });
      expect(second?._rev).not.toBe(inserted._rev);
      expect(await store.casUpdate('locks', stale, { owner: 'c', n: 3 })).toBeNull();
      expect(await store.casDelete('locks', stale)).toBe(false);
      const raw = await store.collection('locks').findOne({ _id: 'k' });
      expect(raw).toMatchObject({ owner: 'b', n: 2, _rev: second?._rev });
      // Deleted and recreated: a writer from the first life cannot touch the second one.
      expect(second && (await store.casDelete('locks', second))).toBe(true);
      const reborn = await store.insert('locks', { _id: 'k', owner: 'd', n: 1 });
      expect(second && (await store.casUpdate('locks', second, { owner: 'e' }))).toBeNull();
      expect(await store.collection('locks').findOne({ _id: 'k' })).toMatchObject({ owner: 'd', _rev: reborn._rev });
      // Guards never outlive a write.
      expect(await store.collection('guards').countDocuments()).toBe(0);
    });
  }

  it('20 racing compare-and-sets from one revision: exactly one wins (guarded)', async () => {
    const store = new Store(handle.db, { prefix: 'race_', clock: () => new Date(), guard: 'always', guardTimeoutMs: 30_000 });
    const doc = await store.insert('cursors', { _id: 'c', position: 0 });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.casUpdate('cursors', doc, { position: i + 1 })));
    const winners = results.filter((r) => r !== null);
    expect(winners).toHaveLength(1);
    const raw = await store.collection('cursors').findOne({ _id: 'c' });
    expect(raw?.['position']).toBe(winners[0]?.['position']);
    expect(raw?.['_rev']).toBe(winners[0]?._rev);
  });
});
