import { expect } from 'vitest';
import { StorageConflictError, StorageError } from '../../../errors/index.js';
import type { StorageAdapter } from '../../../storage/adapter.js';
import type { StorageCaseContext } from '../types.js';
import { race } from './helpers.js';

export interface ReleaseRaceOps {
  /** Tries to take the key for `owner`; true when taken. */
  take(adapter: StorageAdapter, owner: string, round: number): Promise<boolean>;
  /** While `owner` holds the key: a problem when storage says otherwise, else null. */
  check(adapter: StorageAdapter, owner: string): Promise<string | null>;
  release(adapter: StorageAdapter, owner: string): Promise<void>;
}

/**
 * Six callers (spread over the adapter and its peers) take and release one key for
 * `rounds` rounds each, so releases delete the record while other callers are creating it.
 * Half the callers hold the key a little and `check` it; the others release at once, so
 * creations and deletions race as often as possible. Fails on a `StorageConflictError` or
 * any non-`StorageError` failure, and when two callers hold the key at once. A plain
 * `StorageError` (an adapter giving up after bounded retries under this contention) is
 * tolerated: it is no answer, but not a wrong one. Every caller stops at the first problem
 * and the case waits for all of them, so no call is still running when the next case starts.
 */
export async function raceTakeAndRelease(context: StorageCaseContext, ops: ReleaseRaceOps, rounds = 100): Promise<void> {
  let holder: string | null = null;
  const problems: string[] = [];
  let takes = 0;
  await race(context, 6, async (adapter, index) => {
    const owner = `w${index}`;
    for (let round = 0; round < rounds && problems.length === 0; round++) {
      try {
        if (!(await ops.take(adapter, owner, round))) continue;
        if (holder !== null) problems.push(`${owner} took the key while ${holder} held it`);
        holder = owner;
        takes++;
        if (index % 2 === 0) {
          const problem = await ops.check(adapter, owner);
          if (problem !== null) problems.push(`${owner}: ${problem}`);
        }
        holder = null;
        await ops.release(adapter, owner);
      } catch (error) {
        if (holder === owner) holder = null;
        if (!(error instanceof StorageError) || error instanceof StorageConflictError) problems.push(`${owner}: ${String(error)}`);
      }
    }
  });
  expect(problems).toEqual([]);
  expect(takes).toBeGreaterThan(0);
}
