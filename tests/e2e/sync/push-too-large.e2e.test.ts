/**
 * Connec! (here the sandbox, as a proxy in front of it would) refuses a batch body over its size
 * limit with 413. That refusal is the call's, not any one record's: the engine sends the batch
 * in halves, so one oversized record fails alone and the records sent with it are pushed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type PushHarness, startPushHarness, TENANT } from './push-harness.js';

let h: PushHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const contact = (id: string, firstName: string, jobTitle: string | null = null) => ({
  id,
  firstName,
  lastName: 'L',
  jobTitle,
  email: null,
  updatedAt: new Date(),
});

async function pushedLocalIds(harness: PushHarness): Promise<string[]> {
  const all = await harness.sandbox.admin.listRecords(harness.groupId, 'people', { externalIds: true });
  return all
    .flatMap((r) => (Array.isArray(r.id) ? (r.id as { id: string; provider: string }[]) : []))
    .filter((e) => e.provider !== 'connec')
    .map((e) => e.id)
    .sort();
}

describe('a batch refused as too large (413)', () => {
  it('fails the oversized record alone; the records sent with it are pushed and linked', async () => {
    h = await startPushHarness({ maxBodyBytes: 4_096 });
    const { mno, groupId } = h;
    const records = [
      contact('ct-1', 'Ada'),
      contact('ct-2', 'Bob'),
      contact('ct-3', 'Cy', 'x'.repeat(5_000)),
      contact('ct-4', 'Di'),
      contact('ct-5', 'Ed'),
      contact('ct-6', 'Flo'),
    ];
    const results = await mno.sync.pushMany({ tenant: TENANT, groupId, entity: 'contacts', records });
    expect(results.map((r) => [r.localId, r.status])).toEqual([
      ['ct-1', 'pushed'],
      ['ct-2', 'pushed'],
      ['ct-3', 'failed'],
      ['ct-4', 'pushed'],
      ['ct-5', 'pushed'],
      ['ct-6', 'pushed'],
    ]);
    expect(results[2]).toMatchObject({ code: 'http_413', httpStatus: 413, connecId: null });
    expect(await pushedLocalIds(h)).toEqual(['ct-1', 'ct-2', 'ct-4', 'ct-5', 'ct-6']);
    const ids = { tenant: TENANT, groupId, entity: 'contacts' };
    for (const r of results.filter((x) => x.status === 'pushed')) {
      expect(await h.storage.idMaps.find(ids, { localId: r.localId })).toMatchObject({ connecId: r.connecId, lastError: null });
    }
    expect((await h.storage.idMaps.find(ids, { localId: 'ct-3' }))?.lastError).toMatchObject({ code: 'http_413' });

    // Shortened, it goes through.
    const again = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contact('ct-3', 'Cy', 'Engineer') });
    expect(again.status).toBe('pushed');
    expect(await pushedLocalIds(h)).toEqual(['ct-1', 'ct-2', 'ct-3', 'ct-4', 'ct-5', 'ct-6']);
  });

  it('halves still right when a half is first refused with 429: retried, each record pushed once', async () => {
    h = await startPushHarness({ maxBodyBytes: 4_096 });
    const { mno, groupId } = h;
    // Bodies over the limit are answered 413 before any fault applies: the 429s fall on halves.
    const fault = await h.sandbox.admin.addFault({ path: '/batch', method: 'POST', kind: 'rate-limit', retryAfterSeconds: 0, count: 2 });
    const records = [contact('ct-1', 'Ada'), contact('ct-2', 'Bob'), contact('ct-3', 'Cy', 'x'.repeat(5_000)), contact('ct-4', 'Di')];
    const results = await mno.sync.pushMany({ tenant: TENANT, groupId, entity: 'contacts', records });
    expect(results.map((r) => [r.localId, r.status])).toEqual([
      ['ct-1', 'pushed'],
      ['ct-2', 'pushed'],
      ['ct-3', 'failed'],
      ['ct-4', 'pushed'],
    ]);
    expect(results[2]).toMatchObject({ code: 'http_413', httpStatus: 413 });
    expect((await h.sandbox.admin.faults()).find((f) => f.id === fault.id)?.hits).toBe(2);
    expect(await pushedLocalIds(h)).toEqual(['ct-1', 'ct-2', 'ct-4']);
  });
});
