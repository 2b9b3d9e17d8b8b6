/**
 * A full import run as a durable job (`enqueueImport({ full: true })`, the control endpoint's
 * `opts.full_sync`) checkpoints after every committed page like the initial import: its retry,
 * after a Connec! 5xx or a crash, resumes where it stopped instead of starting over.
 */
import { JobTypes } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

describe('a full import job that fails part way', () => {
  it('resumes from its checkpoint on retry, not from the first page', async () => {
    const h = await createHarness({ sync: { pageSize: 2, importPagesInFlight: 1 } });
    await provisionGroup(h.storage);
    for (let i = 0; i < 6; i++) h.connec.seed(GROUP, 'items', { name: `Item ${i}` }, `i${i}`);
    expect((await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP })).status).toBe('complete');
    expect(h.app.items.size).toBe(6);

    // The full re-import: its third page of items answers a 503 once.
    const listPage = h.connec.listPage.bind(h.connec);
    let failed = false;
    const itemPages: number[] = [];
    h.connec.listPage = async (groupId, collection, options) => {
      if (collection === 'items') itemPages.push(options.skip);
      if (!failed && collection === 'items' && options.skip === 4) {
        failed = true;
        throw new Error('Connec! unavailable');
      }
      return listPage(groupId, collection, options);
    };
    await h.sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP, full: true });
    await h.drain();
    expect(failed).toBe(true);
    expect(await h.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ dead: 0, pending: 0 });
    expect(await h.storage.cursors.get({ tenant: TENANT, groupId: GROUP, entity: 'items', kind: 'import' })).toMatchObject({ complete: true, position: 6 });
    // Pages 1 and 2 were committed before the failure: the retry reads on from page 3.
    expect(itemPages).toEqual([0, 2, 4, 4]);
    expect(h.app.items.size).toBe(6);
    expect(h.app.writes.create).toBe(6);
  });
});
