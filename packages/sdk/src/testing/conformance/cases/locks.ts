import { expect } from 'vitest';
import type { StorageCases } from '../types.js';
import { expectDate, expectStorageError, needs, race } from './helpers.js';

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
};
