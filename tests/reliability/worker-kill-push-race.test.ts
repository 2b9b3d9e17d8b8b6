/**
 * A worker process killed with SIGKILL right after the app committed an inbound version of a
 * record, while the app's own push of that record was answered by Connec! (the e2e sync app in
 * separate processes, PostgreSQL storage and app tables, the sandbox as Connec!). The dead
 * worker recorded nothing: the push was taken as agreed, its echo skipped, and the retry of the
 * inbound version skipped as stale, so the app kept the other app's version while Connec! held
 * the pushed one, for good. Once everything settles, both sides must hold the same content.
 */
import { JobTypes } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SyncHarness, startSyncHarness, TENANT, waitFor } from '../e2e/sync/harness.js';
import { pgUnavailableReason } from './lib/pg.js';

const unavailable = await pgUnavailableReason();
// CI must run these tests: there a missing PostgreSQL fails the file instead of skipping it.
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);
if (unavailable) console.warn(`[reliability/worker-kill-push-race] skipped: ${unavailable}`);

let h: SyncHarness;

describe.skipIf(unavailable !== null)('worker SIGKILL after an inbound write, racing a push of the same record', () => {
  beforeAll(async () => {
    h = await startSyncHarness({ storage: 'postgres' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('the push answered while the killed worker held the record: app and Connec! end equal', async () => {
    const { groupId } = await h.provisionGroup('Kill Race Co');
    await h.drain();
    // Another app creates Jane in Connec!; the app imports her (linked, in sync).
    const jane = await h.sandbox.admin.createRecord(groupId, 'people', { first_name: 'Jane', last_name: 'Doe', job_title: 'Engineer' });
    const connecId = String(jane.id);
    await h.sandbox.admin.waitForDeliveries();
    await h.drain();
    const ids = { tenant: TENANT, groupId, entity: 'contacts' };
    const localId = (await h.storage.idMaps.find(ids, { connecId }))?.localId ?? '';
    expect(await h.db.contact(localId)).toMatchObject({ firstName: 'Jane', jobTitle: 'Engineer' });
    // The app's user edits her job title (the record the app will push, read before what follows).
    const edited = { ...(await h.db.contact(localId))!, jobTitle: 'CTO' };

    // A worker process whose contact updates hang after committing (a slow app).
    const victim = await h.spawnWorker({ concurrency: 1, updateDelayMs: 600_000 });
    const updatesBefore = await h.db.writeCount('update');
    // Another app renames her; the worker writes that version in the app, and hangs.
    await new Promise((r) => setTimeout(r, 1_100));
    await h.sandbox.admin.updateRecord(groupId, 'people', connecId, { first_name: 'Janet' });
    await waitFor('the worker to write the other app\u2019s version in the app', async () => (await h.db.writeCount('update')) > updatesBefore, 60_000);
    expect(await h.db.contact(localId)).toMatchObject({ firstName: 'Janet', jobTitle: 'Engineer' });

    // Meanwhile the app pushes its user's edit (made before the rename reached it), answered.
    await new Promise((r) => setTimeout(r, 1_100));
    const pushed = await h.mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: edited });
    expect(pushed.status).toBe('pushed');
    // The worker dies before it records anything about its write.
    victim.kill('SIGKILL');
    await new Promise<void>((resolve) => (victim.exitCode !== null || victim.signalCode !== null ? resolve() : victim.once('exit', () => resolve())));
    expect(victim.signalCode).toBe('SIGKILL');

    // Everything settles: the push's echo delivered, the killed worker's job retried (its lease
    // and the record's lock lapse within seconds).
    await h.sandbox.admin.waitForDeliveries();
    const inboxIdle = async () => {
      await h.drain(5);
      const c = await h.storage.jobs.counts({ type: JobTypes.connecRecord });
      return c.pending === 0 && c.running === 0;
    };
    await waitFor('the inbox to drain after the kill', inboxIdle, 60_000);
    expect((await h.storage.jobs.counts({ type: JobTypes.connecRecord })).dead).toBe(0);

    // Both sides hold the same version.
    const inConnec = await h.sandbox.admin.getRecord(groupId, 'people', connecId, { externalIds: false });
    const inApp = await h.db.contact(localId);
    expect({ firstName: inApp?.firstName, jobTitle: inApp?.jobTitle }).toEqual({ firstName: inConnec.first_name, jobTitle: inConnec.job_title });
  });
});
