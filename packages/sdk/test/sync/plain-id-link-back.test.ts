/**
 * Notifications in the plain id format (`webhooks.connec.external_ids` off: `id` and references
 * are Connec! id strings) cannot show our id on a record. Each link-back is a write in Connec!,
 * which notifies again; sent for every notification, a record linked once would be linked
 * again and again (and a Connec! that notifies the writer too would loop on it). The engine
 * links such a record back when the app first writes it, and again only when that link-back
 * failed.
 */
import { describe, expect, it } from 'vitest';
import { createHarness, GROUP, ORG_UID, provisionGroup, TENANT } from './harness.js';
import { plainIdLinkBackRetryOfEarlierRelease } from './plain-id-link-back-upgrade-scenario.js';

const env = { group_id: GROUP, channel_id: ORG_UID };
const scope = (entity: string) => ({ tenant: TENANT, groupId: GROUP, entity });

/** The link-back PUTs sent so far, as `collection/connecId`. */
function putsOf(batches: { method: string; collection: string; id?: string | undefined }[][]): string[] {
  return batches.flat().filter((op) => op.method === 'put').map((op) => `${op.collection}/${op.id}`);
}

describe('link-back of records notified with plain ids', () => {
  it('links a new record back once, not again on later notifications of it (our own link-back echoed, a replay)', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o-plain');
    const org = { id: 'o-plain', name: 'Acme', ...env, updated_at: '2016-10-04T00:36:24Z' };
    await h.notify({ organizations: [org] });
    await h.drain();
    const map = await h.storage.idMaps.find(scope('companies'), { connecId: 'o-plain' });
    expect(map?.localId).toBeTruthy();
    expect(putsOf(h.connec.batches)).toEqual(['organizations/o-plain']);
    // Connec! notifies the write our link-back made (a later `updated_at`, same content), and
    // then the first notification once more.
    await h.notify({ organizations: [{ ...org, updated_at: '2016-10-04T00:40:00Z' }] });
    await h.drain();
    await h.notify({ organizations: [{ ...org, updated_at: '2016-10-04T00:40:00Z' }] });
    await h.drain();
    expect(putsOf(h.connec.batches)).toEqual(['organizations/o-plain']);
    expect(h.app.companies.size).toBe(1);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('an edit made in Connec! is applied without a link-back; a record with sub-records links the sub-record ids the update returned', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const org = { id: 'o-1', name: 'Acme', ...env, updated_at: '2016-10-04T00:36:24Z' };
    const invoice = { id: 'i-1', transaction_number: 'INV-1', lines: [{ id: 'l-1', quantity: 1 }], ...env, updated_at: '2016-10-04T00:36:24Z' };
    h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o-1');
    h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-1' }, 'i-1');
    await h.notify({ organizations: [org], invoices: [invoice] });
    await h.drain();
    expect(putsOf(h.connec.batches).sort()).toEqual(['invoices/i-1', 'organizations/o-1']);
    await h.notify({
      organizations: [{ ...org, name: 'Acme Ltd', updated_at: '2016-10-05T00:00:00Z' }],
      invoices: [{ ...invoice, lines: [{ id: 'l-1', quantity: 3 }, { id: 'l-2', quantity: 1 }], updated_at: '2016-10-05T00:00:00Z' }],
    });
    await h.drain();
    const [company] = [...h.app.companies.values()];
    expect(company?.name).toBe('Acme Ltd');
    const [stored] = [...h.app.invoices.values()];
    expect(stored?.lines.map((l) => l.quantity)).toEqual([3, 1]);
    // The organization is not linked again; the invoice is, for its new line's id.
    expect(putsOf(h.connec.batches).sort()).toEqual(['invoices/i-1', 'invoices/i-1', 'organizations/o-1']);
    const last = h.connec.batches.flat().filter((op) => op.method === 'put' && op.collection === 'invoices').at(-1);
    const lineIds = ((last?.record.lines ?? []) as { id: { provider: string; id: string }[] }[]).map((line) => line.id.map((e) => e.id));
    expect(lineIds).toEqual([
      ['l-1', stored?.lines[0]?.id],
      ['l-2', stored?.lines[1]?.id],
    ]);
  });

  it('a link-back that failed is sent again by the retry, and only then', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    let refusals = 1;
    h.connec.rejectOp = (op) => (op.method === 'put' && refusals-- > 0 ? { status: 503, error: 'Service Unavailable' } : null);
    h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o-retry');
    const org = { id: 'o-retry', name: 'Acme', ...env, updated_at: '2016-10-04T00:36:24Z' };
    await h.notify({ organizations: [org] });
    await h.drain();
    // Refused once, then sent again by the job's retry (the record itself is not written twice).
    expect(putsOf(h.connec.batches)).toEqual(['organizations/o-retry', 'organizations/o-retry']);
    expect(h.app.companies.size).toBe(1);
    const linked = h.connec.find(GROUP, 'organizations', 'o-retry');
    const localId = (await h.storage.idMaps.find(scope('companies'), { connecId: 'o-retry' }))?.localId;
    expect(linked?.id).toEqual(expect.arrayContaining([expect.objectContaining({ id: localId, provider: 'myapp' })]));
    await h.notify({ organizations: [{ ...org, updated_at: '2016-10-04T00:40:00Z' }] });
    await h.drain();
    expect(putsOf(h.connec.batches)).toHaveLength(2);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  });
});

describe('link-back of records notified with plain ids, after an upgrade', () => {
  it("an earlier release's retry of a failed link-back (its job without linkSubIds) still links the record", () => plainIdLinkBackRetryOfEarlierRelease());
});
