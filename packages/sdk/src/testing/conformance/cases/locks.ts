import { expect } from 'vitest';
import type { StorageCases } from '../types.js';
import { expectDate, expectStorageError, needs, race } from './helpers.js';
import { raceTakeAndRelease } from './release-race.js';

const KEY = 'sync:tenant-a:cld-1001';
const TTL = 30_000;

export const lockCases: StorageCases = {
  'acquire takes a free lock; another owner is refused; the holder re-acquires': async ({ adapter }) => {
    expect(await adapter.locks.acquire(KEY, 'w1', TTL)).toBe(true);
    expect(await adapter.locks.acquire(KEY, 'w2', TTL)).toBe(false);
    expect(await adapter.locks.acquire(KEY, 'w1', TTL)).toBe(true);
    expect(await adapter.locks.acquire(`${KEY}:other`, 'w2', TTL)).toBe(true);
  },

  'an expired lock can be taken by another owner, and the old owner loses it': needs(['clock'], async ({ adapter, clock }) => {
    await adapter.locks.acquire(KEY, 'w1', TTL);
    clock.advance(TTL - 1);
    expect(await adapter.locks.acquire(KEY, 'w2', TTL)).toBe(false);
    clock.advance(1);
    expect(await adapter.locks.acquire(KEY, 'w2', TTL)).toBe(true);
    expect(await adapter.locks.refresh(KEY, 'w1', TTL)).toBe(false);
    expect(await adapter.locks.release(KEY, 'w1')).toBe(false);
    expect(await adapter.locks.acquire(KEY, 'w1', TTL)).toBe(false);
  }),

  'refresh extends the owner live lock': needs(['clock', 'inspect'], async ({ adapter, inspect, clock }) => {
    await adapter.locks.acquire(KEY, 'w1', TTL);
    clock.advance(TTL - 1_000);
    expect(await adapter.locks.refresh(KEY, 'w1', TTL)).toBe(true);
    expectDate((await inspect.lock(KEY))?.expiresAt, clock.ms() + TTL);
    clock.advance(TTL - 1_000);
    expect(await adapter.locks.acquire(KEY, 'w2', TTL)).toBe(false);
    clock.advance(1_000);
    expect(await adapter.locks.acquire(KEY, 'w2', TTL)).toBe(true);
  }),

  'refresh by another owner, of an unknown lock or of an expired one returns false': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      expect(await adapter.locks.refresh(KEY, 'w1', TTL)).toBe(false);
      await adapter.locks.acquire(KEY, 'w1', TTL);
      expect(await adapter.locks.refresh(KEY, 'w2', TTL)).toBe(false);
      clock.advance(TTL);
      expect(await adapter.locks.refresh(KEY, 'w1', TTL)).toBe(false);
    },
  ),

  'release frees the lock and leaves no row; releasing again or by another owner is false': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      await adapter.locks.acquire(KEY, 'w1', TTL);
      expect(await adapter.locks.release(KEY, 'w2')).toBe(false);
      expect((await inspect.lock(KEY))?.owner).toBe('w1');
      expect(await adapter.locks.release(KEY, 'w1')).toBe(true);
      expect(await inspect.lock(KEY)).toBeNull();
      expect(await adapter.locks.release(KEY, 'w1')).toBe(false);
      expect(await adapter.locks.acquire(KEY, 'w2', TTL)).toBe(true);
    },
  ),

  '20 concurrent acquires of a free lock: exactly one winner': needs(['concurrency'], async (context) => {
    const results = await race(context, 20, (adapter, i) => adapter.locks.acquire(KEY, `w${i}`, TTL));
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = `w${results.indexOf(true)}`;
    expect(await context.adapter.locks.refresh(KEY, winner, TTL)).toBe(true);
  }),

  '20 concurrent acquires of an expired lock: exactly one winner': needs(['concurrency', 'clock'], async (context) => {
    await context.adapter.locks.acquire(KEY, 'crashed', TTL);
    context.clock.advance(TTL + 1);
    const results = await race(context, 20, (adapter, i) => adapter.locks.acquire(KEY, `w${i}`, TTL));
    expect(results.filter(Boolean)).toHaveLength(1);
  }),

  'the stored lock holds its owner and expiry as a timestamp': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    await adapter.locks.acquire(KEY, 'w1', TTL);
    const row = await inspect.lock(KEY);
    expect(row).toMatchObject({ key: KEY, owner: 'w1' });
    expectDate(row?.expiresAt, clock.ms() + TTL);
  }),

  'a non-positive ttl is rejected with StorageError and takes nothing': needs(['inspect'], async ({ adapter, inspect }) => {
    await expectStorageError(adapter.locks.acquire(KEY, 'w1', 0), 'locks.acquire');
    expect(await inspect.lock(KEY)).toBeNull();
  }),

  'acquireMany takes the free, expired and own keys and skips the ones another owner holds': needs(
    ['clock', 'inspect'],
    async ({ adapter, inspect, clock }) => {
      await adapter.locks.acquire(`${KEY}:held`, 'w2', TTL);
      await adapter.locks.acquire(`${KEY}:expiring`, 'w2', 1_000);
      await adapter.locks.acquire(`${KEY}:own`, 'w1', 1_000);
      clock.advance(1_000);
      const taken = await adapter.locks.acquireMany(
        [`${KEY}:free`, `${KEY}:held`, `${KEY}:expiring`, `${KEY}:own`, `${KEY}:free`],
        'w1',
        TTL,
      );
      expect([...taken].sort()).toEqual([`${KEY}:expiring`, `${KEY}:free`, `${KEY}:own`]);
      expect((await inspect.lock(`${KEY}:held`))?.owner).toBe('w2');
      for (const k of taken) {
        const row = await inspect.lock(k);
        expect(row?.owner).toBe('w1');
        expectDate(row?.expiresAt, clock.ms() + TTL);
      }
      expect(await adapter.locks.acquireMany([], 'w1', TTL)).toEqual([]);
      expect(await adapter.locks.acquire(`${KEY}:free`, 'w3', TTL)).toBe(false);
    },
  ),

  'releaseMany releases only the owner locks and leaves no row for them': needs(['inspect'], async ({ adapter, inspect }) => {
    await adapter.locks.acquireMany([`${KEY}:a`, `${KEY}:b`], 'w1', TTL);
    await adapter.locks.acquire(`${KEY}:c`, 'w2', TTL);
    expect(await adapter.locks.releaseMany([`${KEY}:a`, `${KEY}:b`, `${KEY}:c`, `${KEY}:unknown`], 'w1')).toBe(2);
    expect(await inspect.lock(`${KEY}:a`)).toBeNull();
    expect(await inspect.lock(`${KEY}:b`)).toBeNull();
    expect((await inspect.lock(`${KEY}:c`))?.owner).toBe('w2');
    expect(await adapter.locks.releaseMany([`${KEY}:a`], 'w1')).toBe(0);
    expect(await adapter.locks.releaseMany([], 'w1')).toBe(0);
  }),

  '10 owners racing acquireMany over overlapping keys: every key has exactly one holder': needs(
    ['concurrency'],
    async (context) => {
      const keys = Array.from({ length: 11 }, (_, i) => `${KEY}:k${i}`);
      const results = await race(context, 10, (adapter, index) =>
        adapter.locks.acquireMany(keys.slice(index % 4, (index % 4) + 8), `w${index}`, TTL),
      );
      const all = results.flat();
      expect(new Set(all).size).toBe(all.length);
      expect(new Set(all).size).toBe(11);
    },
  ),

  'acquireMany with a non-positive ttl or an empty key is rejected with StorageError and takes nothing': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      await expectStorageError(adapter.locks.acquireMany([KEY], 'w1', 0), 'locks.acquireMany');
      await expectStorageError(adapter.locks.acquireMany([KEY, ''], 'w1', TTL), 'locks.acquireMany');
      expect(await inspect.lock(KEY)).toBeNull();
    },
  ),

  'acquires racing releases of one key from several callers never throw a conflict and never hand it to two owners': needs(
    ['concurrency'],
    // A release deletes the lock while other callers are creating it: every acquire must
    // still answer true or false, never a conflict error.
    (context) =>
      raceTakeAndRelease(context, {
        take: async (adapter, owner, round) =>
          round % 3 === 2
            ? (await adapter.locks.acquireMany([KEY], owner, TTL)).includes(KEY)
            : adapter.locks.acquire(KEY, owner, TTL),
        check: async (adapter, owner) => ((await adapter.locks.refresh(KEY, owner, TTL)) ? null : 'lost the lock it held'),
        release: async (adapter, owner) => {
          if (!(await adapter.locks.release(KEY, owner))) throw new Error(`${owner} could not release its lock`);
        },
      }),
  ),
};
