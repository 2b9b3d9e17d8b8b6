/**
 * A push answered ok clears the error the record's map held when the push was prepared. Its
 * answer is awaited first: another push of the same record (the app's user saving again) can
 * fail in that window (Connec! answers 503, after applying the op or not). That failure is what
 * makes the next push of the content this push sent go out instead of being answered
 * `unchanged` (see retried-recheck-poison-mark-push-race.test.ts): the answer must not clear it.
 */
import type { ConnecPortBatchOp } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { type Contact, createHarness, GROUP, linkedJane, provisionGroup, TENANT } from './harness.js';

describe('a push answered after another push of the record failed', () => {
  it('keeps that failure: the app setting the first push’s content back pushes it again', async () => {
    let now = new Date('2016-10-04T09:00:00Z');
    const h = await createHarness({ clock: () => now });
    const { app, connec, storage, sync } = h;
    const ids = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };
    await provisionGroup(storage);
    const { localId } = await linkedJane(h);
    const push = (record: Contact) => sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...record } });
    const edit = (jobTitle: string, at: string) => {
      now = new Date(at);
      app.contacts.set(localId, { ...app.contacts.get(localId)!, jobTitle, updatedAt: now });
      return app.contacts.get(localId)!;
    };

    // The first push is applied; before its answer arrives, the user saves again and the app
    // pushes that: Connec! applies it too, and its answer is lost behind a 503.
    const batch = connec.batch.bind(connec);
    let second: string | undefined;
    connec.batch = async (ops: ConnecPortBatchOp[]) => {
      const results = await batch(ops);
      if (second === undefined) {
        second = 'sending';
        second = (await push(edit('VP', '2016-10-04T10:30:00Z'))).status;
        return results;
      }
      return results.map(() => ({ status: 503, record: null, error: 'Service Unavailable' }));
    };
    expect((await push(edit('CTO', '2016-10-04T10:00:00Z'))).status).toBe('pushed');
    expect(second).toBe('failed');
    connec.batch = batch;
    expect(connec.find(GROUP, 'people', 'p9')).toMatchObject({ job_title: 'VP' });
    // The failed push is still on record: Connec! may hold what it sent.
    expect((await storage.idMaps.find(ids, { connecId: 'p9' }))?.lastError?.code).toBe('http_503');

    // The user sets the title back: the content the first push sent is sent again.
    expect((await push(edit('CTO', '2016-10-04T11:00:00Z'))).status).toBe('pushed');
    expect(connec.find(GROUP, 'people', 'p9')).toMatchObject({ job_title: 'CTO' });
    expect((await storage.idMaps.find(ids, { connecId: 'p9' }))?.lastError).toBeNull();
  });
});
