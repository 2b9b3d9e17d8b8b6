/**
 * A create whose batch answer is lost after Connec! applied it (the sandbox's `truncate` fault
 * cuts the answer of a processed request), then pushed again, in a group where many records
 * were updated recently: the retry is refused with 409 (our id is bound), and the recovery
 * must find that record among the recently updated ones to link it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type PushHarness, startPushHarness, TENANT } from './push-harness.js';

let h: PushHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const contact = (id: string, firstName: string) => ({ id, firstName, lastName: 'L', jobTitle: null, email: null, updatedAt: new Date() });

async function peopleWithOurId(harness: PushHarness, localId: string) {
  const all = await harness.sandbox.admin.listRecords(harness.groupId, 'people', { externalIds: true });
  return all.filter((r) => Array.isArray(r.id) && (r.id as { id: string; provider: string }[]).some((e) => e.id === localId && e.provider !== 'connec'));
}

describe('a create whose batch answer was lost, pushed again', () => {
  it('is linked to the one record it made even when more records were updated that day than the recovery reads', async () => {
    // 2 records a page: the recovery reads at most 50 pages, i.e. 100 records.
    h = await startPushHarness({ sync: { pageSize: 2 } });
    const { mno, sandbox, groupId } = h;
    // Another app updated 120 people earlier today.
    for (let i = 0; i < 120; i++) await sandbox.admin.createRecord(groupId, 'people', { first_name: `Other ${i}`, last_name: 'X' });

    await sandbox.admin.addFault({ path: '/batch', kind: 'truncate', count: 1 });
    const first = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contact('ct-1', 'Ada') });
    expect(first).toMatchObject({ status: 'failed', code: 'push_failed' });
    // Connec! applied it: one record carries our id.
    const made = await peopleWithOurId(h, 'ct-1');
    expect(made).toHaveLength(1);

    const second = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contact('ct-1', 'Ada') });
    expect(second).toMatchObject({ status: 'pushed', error: null });
    expect(await peopleWithOurId(h, 'ct-1')).toHaveLength(1);
    const connecId = ((made[0]?.id ?? []) as { id: string; provider: string }[]).find((e) => e.provider === 'connec')?.id;
    expect(second.connecId).toBe(connecId);
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId, entity: 'contacts' }, { localId: 'ct-1' });
    expect(map).toMatchObject({ connecId, lastError: null });
  });
});

describe('a lost create pushed again with other records while Connec! cannot list', () => {
  it('fails that record alone: the others get their results', async () => {
    h = await startPushHarness();
    const { mno, sandbox, groupId } = h;
    await sandbox.admin.addFault({ path: '/batch', kind: 'truncate', count: 1 });
    const first = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contact('ct-1', 'Ada') });
    expect(first).toMatchObject({ status: 'failed', code: 'push_failed' });

    // Connec! cannot list people for a while: the recovery of ct-1 cannot look it up.
    await sandbox.admin.addFault({ path: '/api/v2/*/people*', method: 'GET', kind: 'status', status: 503, count: 20 });
    const results = await mno.sync.pushMany({ tenant: TENANT, groupId, entity: 'contacts', records: [contact('ct-1', 'Ada'), contact('ct-2', 'Bob')] });
    expect(results.map((r) => [r.localId, r.status])).toEqual([
      ['ct-1', 'failed'],
      ['ct-2', 'pushed'],
    ]);
    const ids = { tenant: TENANT, groupId, entity: 'contacts' };
    expect((await h.storage.idMaps.find(ids, { localId: 'ct-1' }))?.lastError).toMatchObject({ code: 'http_503' });
    await sandbox.admin.clearFaults();
    // Once Connec! lists again, the next push links the one record the lost create made.
    const again = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contact('ct-1', 'Ada') });
    expect(again.status).toBe('pushed');
    expect(await peopleWithOurId(h, 'ct-1')).toHaveLength(1);
  });
});
