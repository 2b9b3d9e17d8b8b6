/**
 * Dismissing a dead letter (`discardDeadLetter`) through the public API: `mno.sync` acts on the
 * sync jobs it lists only (its `retryDeadLetter` too), `mno.worker` on a dead job of any type.
 */
import { createMaestrano, JobTypes, memoryAdapter, type StorageAdapter, staticTenants } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { basicAuth, captureLogger } from '../billing/helpers.js';
import { FakeConnec } from './fake-connec.js';
import { API_ID, API_KEY, buildConnector, C, drainer, GROUP, LocalApp, ORG_UID, provisionGroup, TENANT, testTenant } from './harness.js';

function setup() {
  const storage: StorageAdapter = memoryAdapter();
  const connec = new FakeConnec(ORG_UID);
  const logger = captureLogger();
  const mno = createMaestrano({
    tenants: staticTenants([testTenant()]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger,
    connector: buildConnector(new LocalApp()),
    // One attempt, and the invoice's item is never fetched: the record job dies at once.
    sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 1, fetchMissingReferences: false },
  });
  const notify = (body: unknown) =>
    mno.handler(
      new Request(`http://127.0.0.1/maestrano/connec/notifications/${TENANT}`, {
        method: 'POST',
        headers: { authorization: basicAuth(API_ID, API_KEY), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    );
  return { storage, connec, mno, logged: logger.entries, notify, drain: drainer(mno.worker, storage) };
}

type Setup = ReturnType<typeof setup>;

/** A record job dead-lettered by the worker (an invoice whose item never arrives). */
async function deadRecord(s: Setup): Promise<string> {
  await provisionGroup(s.storage);
  const invoice = s.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-SECRET-1', lines: [{ item_id: [C('it1')], quantity: 1 }] }, 'i1');
  expect((await s.notify({ invoices: [invoice] })).status).toBe(200);
  await s.drain(20);
  const [dead, ...more] = await s.mno.sync.deadLetters();
  expect(more).toEqual([]);
  expect(dead).toMatchObject({ type: JobTypes.connecRecord, entity: 'invoices', connecId: 'i1' });
  return dead?.jobId ?? '';
}

/** A billing job (not a sync one) dead-lettered: failed for good by the worker that claimed it. */
async function deadBilling(s: Setup): Promise<string> {
  const type = JobTypes.billingCheckDuplicates;
  const { id } = await s.storage.jobs.enqueue({ type, tenant: TENANT, groupId: 'cld-gone', payload: { groupId: 'cld-gone' } });
  const [claimed] = await s.storage.jobs.claim({ worker: 'test', limit: 1, leaseMs: 60_000, types: [type] });
  expect(claimed?.id).toBe(id);
  expect(await s.storage.jobs.fail(id, 'test', { error: { message: 'company deleted' }, retryAt: new Date(), final: true })).toBe('dead');
  return id;
}

describe('discardDeadLetter', () => {
  it('mno.sync.discardDeadLetter deletes a dead record job: gone from storage, mno.sync.deadLetters() and mno.worker.deadLetters(), logged without its payload', async () => {
    const s = setup();
    const jobId = await deadRecord(s);
    expect((await s.mno.worker.deadLetters()).map((d) => d.jobId)).toEqual([jobId]);

    expect(await s.mno.sync.discardDeadLetter(jobId)).toBe(true);

    expect(await s.storage.jobs.get(jobId)).toBeNull();
    expect(await s.mno.sync.deadLetters()).toEqual([]);
    expect(await s.mno.worker.deadLetters()).toEqual([]);
    expect((await s.storage.jobs.counts()).dead).toBe(0);
    // Nothing left to retry or discard.
    expect(await s.mno.sync.discardDeadLetter(jobId)).toBe(false);
    expect(await s.mno.sync.retryDeadLetter(jobId)).toBe(false);
    const lines = s.logged.filter((l) => /dead letter discarded/.test(l.message));
    expect(lines).toEqual([{ level: 'info', message: 'sync: dead letter discarded', fields: { jobId, type: JobTypes.connecRecord } }]);
    expect(JSON.stringify(s.logged)).not.toContain('INV-SECRET-1');
  });

  it('mno.sync.retryDeadLetter and discardDeadLetter leave a dead billing job alone (false); mno.worker.discardDeadLetter removes it', async () => {
    const s = setup();
    const jobId = await deadBilling(s);
    const before = await s.storage.jobs.get(jobId);
    expect(before).toMatchObject({ status: 'dead', type: JobTypes.billingCheckDuplicates, attempts: 1 });

    expect(await s.mno.sync.retryDeadLetter(jobId)).toBe(false);
    expect(await s.mno.sync.discardDeadLetter(jobId)).toBe(false);
    expect(await s.storage.jobs.get(jobId)).toEqual(before);
    expect(await s.mno.sync.deadLetters()).toEqual([]);
    expect((await s.mno.worker.deadLetters()).map((d) => d.jobId)).toEqual([jobId]);

    expect(await s.mno.worker.discardDeadLetter(jobId)).toBe(true);
    expect(await s.storage.jobs.get(jobId)).toBeNull();
    expect(await s.mno.worker.deadLetters()).toEqual([]);
    expect(await s.mno.worker.discardDeadLetter(jobId)).toBe(false);
    expect(s.logged.filter((l) => /dead letter discarded/.test(l.message))).toEqual([
      { level: 'info', message: 'worker: dead letter discarded', fields: { jobId, type: JobTypes.billingCheckDuplicates } },
    ]);
  });

  it('mno.worker.discardDeadLetter refuses a job that is not dead, and an unknown id, changing nothing', async () => {
    const s = setup();
    const { id } = await s.storage.jobs.enqueue({ type: JobTypes.billingCheckDuplicates, tenant: TENANT, groupId: 'cld-1', payload: { groupId: 'cld-1' }, runAt: new Date(Date.now() + 3_600_000) });
    const before = await s.storage.jobs.get(id);
    expect(await s.mno.worker.discardDeadLetter(id)).toBe(false);
    expect(await s.mno.worker.discardDeadLetter('no-such-job')).toBe(false);
    expect(await s.storage.jobs.get(id)).toEqual(before);
    expect(await s.storage.jobs.counts()).toMatchObject({ pending: 1, dead: 0 });
  });
});
