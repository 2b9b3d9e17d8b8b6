// withStorageLock with renewal (the SSO login's and the member removal's user lock): a lock
// kept by confirmed renewals reads as held however slow each renewal is, and a refused
// renewal reads as lost.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { memoryAdapter } from '../../src/storage/memory.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { withStorageLock } from '../../src/webhooks/locks.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Storage whose lock renewals answer after `delayMs` (a busy database). */
function slowRefresh(storage: StorageAdapter, delayMs: number, answer?: () => boolean): StorageAdapter {
  return {
    ...storage,
    locks: {
      ...storage.locks,
      refresh: async (key, owner, ttlMs) => {
        await sleep(delayMs);
        const renewed = await storage.locks.refresh(key, owner, ttlMs);
        return answer ? answer() && renewed : renewed;
      },
    },
  };
}

/**
 * Runs `run` on fake timers (Date included), advancing them 5 ms at a time until it settles:
 * `held()` reads the wall clock, and on real timers an event-loop stall of a few hundred ms
 * (a loaded CI machine) lets a body's sample run before the renewal that is already answered.
 */
async function onFakeTime<T>(run: () => Promise<T>): Promise<T> {
  vi.useFakeTimers();
  let settled = false;
  const result = run().finally(() => {
    settled = true;
  });
  while (!settled) await vi.advanceTimersByTimeAsync(5);
  return result;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('withStorageLock with renew', () => {
  it('reads as held for a body far longer than the lease while slow renewals are confirmed; another owner cannot take it', async () => {
    const storage = slowRefresh(memoryAdapter(), 200);
    const samples: boolean[] = [];
    let stolen = false;
    const run = await onFakeTime(() =>
      withStorageLock(storage, 'k', { owner: 'a', ttlMs: 1_000, waitMs: 0, logger: silent, renew: true }, async (lease) => {
        for (let i = 0; i < 60; i++) {
          samples.push(lease.held());
          if (await storage.locks.acquire('k', 'b', 1_000)) stolen = true;
          await sleep(25);
        }
        return 'done';
      }),
    );
    expect(run).toEqual({ acquired: true, value: 'done' });
    expect(samples.every(Boolean)).toBe(true);
    expect(stolen).toBe(false);
    // Released at the end: another owner takes it at once.
    expect(await storage.locks.acquire('k', 'b', 1_000)).toBe(true);
  });

  it('reads as lost once a renewal is refused', async () => {
    let allow = true;
    const storage = slowRefresh(memoryAdapter(), 0, () => allow);
    const run = await onFakeTime(() =>
      withStorageLock(storage, 'k', { owner: 'a', ttlMs: 600, waitMs: 0, logger: silent, renew: true }, async (lease) => {
        await sleep(250);
        const before = lease.held();
        allow = false;
        await sleep(300);
        return [before, lease.held()];
      }),
    );
    expect(run).toEqual({ acquired: true, value: [true, false] });
  });
});
