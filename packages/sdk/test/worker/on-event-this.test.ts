// The worker's onEvent is called as a method of the run options, as it always was: a
// synchronous `onEvent(e) { this.… }` keeps its `this` (behind callObserver it was called bare, and
// the TypeError it then threw was swallowed: its metrics silently stopped).
import type { Logger, WorkerEvent } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';

describe('method-style observers keep their `this`', () => {
  it('worker onEvent declared as a method of the run options', async () => {
    const storage = memoryAdapter();
    const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
    const worker = createWorker(
      { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 't', fetch: globalThis.fetch },
      { 'test.ok': async () => {} },
    );
    await storage.jobs.enqueue({ type: 'test.ok', payload: null });
    const seen: string[] = [];
    const options = {
      pollIntervalMs: 1,
      record(type: string) {
        seen.push(type);
      },
      onEvent(this: { record(type: string): void }, event: WorkerEvent) {
        this.record(event.type);
      },
    };
    const stats = await worker.drain(options);
    expect(stats.completed).toBe(1);
    expect(seen.length).toBeGreaterThan(0);
  });

});
