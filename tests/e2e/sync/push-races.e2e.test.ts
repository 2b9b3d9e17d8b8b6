/**
 * Pushes that meet inbound versions of the same record, against the sandbox as Connec!: an
 * unchanged record is not sent again after an inbound version failed to apply, and a push
 * racing an inbound write is not taken as agreed.
 */
import { createWorker } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { type PushHarness, startPushHarness, TENANT } from './push-harness.js';

let h: PushHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function drainOnce(harness: PushHarness, backoffMs: number): Promise<void> {
  await harness.sandbox.admin.waitForDeliveries();
  const worker = createWorker(harness.mno.runtime, harness.mno.jobs);
  await worker.drain({ pollIntervalMs: 5, concurrency: 2, backoff: { baseMs: backoffMs, maxMs: backoffMs } });
}

describe('push of an unchanged record after an inbound version failed to apply', () => {
  it('is not sent: it must not overwrite the edit another app made in Connec!', async () => {
    // The failed inbound attempt's retry is due a minute later by the storage's clock, which
    // the test moves on when it wants the retry: a real backoff short enough to wait for could
    // lapse inside the first drain on a loaded machine, and that drain would then apply it.
    let skewMs = 0;
    h = await startPushHarness({ storageClock: () => new Date(Date.now() + skewMs) });
    const { mno, sandbox, groupId, contacts } = h;
    const ids = { tenant: TENANT, groupId, entity: 'contacts' };
    contacts.set('ct-1', { id: 'ct-1', firstName: 'Ada', lastName: 'Lovelace', jobTitle: 'Engineer', email: null, updatedAt: new Date() });
    const first = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contacts.get('ct-1') });
    expect(first.status).toBe('pushed');
    const connecId = String(first.connecId);

    // Another app changes the job title in Connec!; applying it in the app fails once.
    await sleep(5);
    await sandbox.admin.updateRecord(groupId, 'people', connecId, { job_title: 'CTO' });
    h.failUpdates.count = 1;
    await drainOnce(h, 60_000);
    expect(contacts.get('ct-1')?.jobTitle).toBe('Engineer');
    const map = await h.storage.idMaps.find(ids, { localId: 'ct-1' });
    expect(map?.lastError).toMatchObject({ message: 'app database briefly unavailable' });

    // Meanwhile the app saves the contact without changing it, and pushes it. Its content is
    // what both sides last agreed on, and the error on its map is an inbound attempt's, not a
    // failed push's: nothing is sent, and Connec! keeps the other app's edit.
    const again = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contacts.get('ct-1') });
    expect(again.status).toBe('unchanged');
    const inConnec = await sandbox.admin.getRecord(groupId, 'people', connecId, { externalIds: false });
    expect(inConnec.job_title).toBe('CTO');
    // The map is left as it was: the same agreed content, the inbound attempt's error.
    expect(await h.storage.idMaps.find(ids, { localId: 'ct-1' })).toMatchObject({ lastPushedHash: map?.lastPushedHash, lastError: map?.lastError });

    // The retry of the failed inbound version, once due, then writes the other app's edit in the app.
    skewMs = 60_000;
    await drainOnce(h, 600);
    expect(contacts.get('ct-1')?.jobTitle).toBe('CTO');
    const after = await h.storage.idMaps.find(ids, { localId: 'ct-1' });
    expect(after?.lastError).toBeNull();
    expect(after?.lastPushedHash).not.toBe(map?.lastPushedHash);
  });
});

describe('a push racing an inbound write of the same record', () => {
  it('when the notified version changes only fields the app does not push, the push is still not taken as agreed: both sides end equal', async () => {
    let racing: (() => Promise<void>) | null = null;
    // Connec! receives the push only after another app's version was notified and written in the app.
    const wrapped: typeof fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.endsWith('/batch') && racing) {
        const run = racing;
        racing = null;
        await run();
      }
      return globalThis.fetch(input, init);
    };
    // No `local.get`: Connec!'s version is written over the local record (connec wins).
    h = await startPushHarness({ fetch: wrapped, withGet: false });
    const harness = h;
    const { mno, sandbox, groupId, contacts } = harness;
    contacts.set('ct-1', { id: 'ct-1', firstName: 'Ada', lastName: 'Lovelace', jobTitle: 'Engineer', email: null, updatedAt: new Date() });
    const first = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contacts.get('ct-1') });
    expect(first.status).toBe('pushed');
    const connecId = String(first.connecId);
    await sleep(5);

    // The user changes the job title; the app saves it and pushes. While the push is on its
    // way, another app changes the email (a field this app reads but does not push), and that
    // version (job title still "Engineer") is written in the app first.
    const saved = { ...(contacts.get('ct-1') as NonNullable<ReturnType<typeof contacts.get>>), jobTitle: 'CTO', updatedAt: new Date() };
    contacts.set('ct-1', saved);
    racing = async () => {
      await sandbox.admin.updateRecord(groupId, 'people', connecId, { email: { address: 'ada@other.app' } });
      await harness.deliver();
      expect(contacts.get('ct-1')).toMatchObject({ jobTitle: 'Engineer', email: 'ada@other.app' });
    };
    const ids = { tenant: TENANT, groupId, entity: 'contacts' };
    const agreed = (await harness.storage.idMaps.find(ids, { localId: 'ct-1' }))?.lastPushedHash;
    const pushed = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: saved });
    expect(pushed.status).toBe('pushed');
    expect(racing).toBeNull();
    // The inbound write left the agreed content as it was (the email is not pushed), yet the
    // push is not recorded as agreed.
    expect(agreed).toEqual(expect.any(String));
    expect(await harness.storage.idMaps.find(ids, { localId: 'ct-1' })).toMatchObject({ lastPushedHash: null, lastError: null });

    // Connec! now holds the push merged over the other app's version.
    const inConnec = await sandbox.admin.getRecord(groupId, 'people', connecId, { externalIds: true });
    expect(inConnec).toMatchObject({ job_title: 'CTO', email: { address: 'ada@other.app' } });

    // Its echo arrives (Connec! notifies the record's current version).
    const state = await sandbox.admin.state();
    const market = state.marketplaces.find((m) => m.name === TENANT);
    if (!market) throw new Error('no marketplace');
    const res = await mno.handler(
      new Request(`http://app.test/maestrano/connec/notifications/${TENANT}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${market.apiId}:${market.apiKey}`).toString('base64')}` },
        body: JSON.stringify({ people: [inConnec] }),
      }),
    );
    expect(res.status).toBe(200);
    await harness.deliver();

    // The push was overtaken by that inbound write (the id map's `syncedAt` moved while it was
    // on its way), so it was not taken as agreed: its echo is written in the app instead of
    // skipped as one, and both sides end equal.
    expect(contacts.get('ct-1')).toMatchObject({ jobTitle: 'CTO', email: 'ada@other.app' });
    // Written, it is the content both sides agree on: the next push of the record sends nothing.
    expect((await harness.storage.idMaps.find(ids, { localId: 'ct-1' }))?.lastPushedHash).toEqual(expect.any(String));
    const again = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contacts.get('ct-1') });
    expect(again.status).toBe('unchanged');
  });
});
