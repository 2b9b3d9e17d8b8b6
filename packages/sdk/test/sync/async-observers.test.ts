/**
 * An `async` event listener, progress callback, worker onEvent or logger that rejects is
 * observability failing: it is ignored (the progress callback's failure is logged), and never
 * becomes an unhandled rejection, which ends a Node.js process by default.
 */
import type { Logger, SyncEvent } from '@org/maestrano-sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { redactingLogger } from '../../src/config/logger.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';
import { createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
});
/** Lets pending rejections surface (Node reports them after the microtask queue drains). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
const reasons = () => unhandled.map((r) => (r instanceof Error ? r.message : String(r)));

describe('async observers that reject', () => {
  it('a rejecting sync.on listener and onProgress: the import completes, no unhandled rejection, the progress failure is logged', async () => {
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (m, f) => warnings.push(`${m} ${String(f?.error)}`), error() {} };
    const h = await createHarness({ sync: { pageSize: 2 }, logger });
    await provisionGroup(h.storage);
    for (let i = 0; i < 4; i++) h.connec.seed(GROUP, 'items', { name: `Item ${i}` }, `it${i}`);
    const events: SyncEvent['type'][] = [];
    h.sync.api.on(async (e) => {
      events.push(e.type);
      throw new Error('listener gone');
    });
    const report = await h.sync.api.importGroup({
      tenant: TENANT,
      groupId: GROUP,
      onProgress: async () => {
        throw new Error('progress socket closed');
      },
    });
    await settle();
    expect({ status: report.status, items: h.app.items.size, unhandled: reasons() }).toEqual({ status: 'complete', items: 4, unhandled: [] });
    expect(events).toContain('import.progress');
    expect(warnings.filter((w) => w.includes('progress socket closed')).length).toBeGreaterThan(0);
  });

  it('a rejecting worker onEvent: the job completes, no unhandled rejection', async () => {
    const storage = memoryAdapter();
    const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
    let ran = 0;
    const worker = createWorker(
      { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 't', fetch: globalThis.fetch },
      { 'test.ok': async () => void ran++ },
    );
    const { id } = await storage.jobs.enqueue({ type: 'test.ok', payload: null });
    const stats = await worker.drain({
      pollIntervalMs: 1,
      onEvent: async () => {
        throw new Error('metrics endpoint down');
      },
    });
    await settle();
    expect({ ran, completed: stats.completed, unhandled: reasons() }).toEqual({ ran: 1, completed: 1, unhandled: [] });
    expect((await storage.jobs.get(id))?.status).toBe('done');
  });

  it('an async logger that rejects: the call returns, no unhandled rejection, fields still redacted', async () => {
    const seen: unknown[] = [];
    const logger = redactingLogger({
      debug: async () => {},
      info: async (_m: string, f?: Record<string, unknown>) => {
        seen.push(f);
        throw new Error('log shipper unreachable');
      },
      warn: async () => {},
      error: async () => {},
    } as unknown as Logger);
    logger.info('hello', { apiKey: 'k-secret', groupId: 'cld-1' });
    await settle();
    expect({ seen, unhandled: reasons() }).toEqual({ seen: [{ apiKey: '[redacted]', groupId: 'cld-1' }], unhandled: [] });
  });
});
