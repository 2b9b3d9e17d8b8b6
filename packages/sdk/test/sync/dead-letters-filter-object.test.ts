/**
 * From JavaScript, `deadLetters(null)` (a filter read from a request that sent none) is a
 * filter that is not one: refused with the documented error (SyncError / ConfigError), like a
 * wrong `limit`, not a TypeError thrown while destructuring it.
 */
import { ConfigError, SyncError } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { createHarness } from './harness.js';

describe('dead letters: a filter that is not an object', () => {
  it('null or a string is refused as the caller’s mistake', async () => {
    const h = await createHarness({ sync: { maxAttempts: 1 } });
    const worker = createWorker(h.runtime, h.sync.jobs ?? {});
    for (const filter of [null, 'cld-1']) {
      await expect(h.sync.api.deadLetters(filter as never)).rejects.toThrow(SyncError);
      await expect(worker.deadLetters(filter as never)).rejects.toThrow(ConfigError);
    }
    expect(await h.sync.api.deadLetters()).toEqual([]);
    expect(await worker.deadLetters()).toEqual([]);
  });
});
