/**
 * An inbox job an earlier release left behind: a record notified in the plain id format
 * (`webhooks.connec.external_ids` off) that the app wrote, whose link-back failed. Releases
 * before the "link plain-id records back once" change retried such a link-back with the job's
 * own payload (`{ entity, collection, record }`, no `linkSubIds`): they linked plain-id records
 * on every notification. The retry, run by the current release, must still send the link-back,
 * or Connec! never learns the app's id for the record.
 */
import type { StorageAdapter } from '@org/maestrano-sdk';
import { expect } from 'vitest';
import { contentHash } from '../../src/sync/records.js';
import { createHarness, GROUP, ORG_UID, provisionGroup, TENANT } from './harness.js';

export async function plainIdLinkBackRetryOfEarlierRelease(storage?: StorageAdapter): Promise<void> {
  const h = await createHarness(storage ? { storage } : {});
  await provisionGroup(h.storage);
  h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o-old');
  const org = { id: 'o-old', name: 'Acme', group_id: GROUP, channel_id: ORG_UID, updated_at: '2016-10-04T00:36:24Z' };

  // What the earlier release's first attempt left: the app's record, its id map at the applied
  // version, and the notification job failed once (the link-back PUT was refused), due again.
  const localId = h.app.create(h.app.companies, 'org', { name: 'Acme', code: null, updatedAt: new Date() }, 'earlier-release').id;
  const scope = { tenant: TENANT, groupId: GROUP, entity: 'companies' };
  await h.storage.idMaps.insert({ ...scope, connecId: 'o-old', localId, syncedAt: new Date() });
  expect(await h.storage.idMaps.markApplied(scope, { connecId: 'o-old' }, new Date(org.updated_at), `in:${contentHash(org)}`)).toBe(true);
  expect((await h.notify({ organizations: [org] })).status).toBe(200);
  const [job] = await h.storage.jobs.claim({ worker: 'earlier-release', limit: 1, leaseMs: 60_000, types: ['connec.record'] });
  expect(job?.payload).toEqual({ entity: 'companies', collection: 'organizations', record: org });
  await h.storage.jobs.fail(job!.id, 'earlier-release', {
    error: { message: 'Linking companies o-old back to Connec! failed: Service Unavailable', code: 'sync_error' },
    retryAt: new Date(),
  });

  await h.drain();

  const puts = h.connec.batches.flat().filter((op) => op.method === 'put').map((op) => `${op.collection}/${op.id}`);
  expect(puts).toEqual(['organizations/o-old']);
  const linked = h.connec.find(GROUP, 'organizations', 'o-old');
  expect(linked?.id).toEqual(expect.arrayContaining([expect.objectContaining({ id: localId, provider: 'myapp' })]));
  expect(h.app.companies.size).toBe(1);
  expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
}
