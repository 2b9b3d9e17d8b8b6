/**
 * The sub-record ids of a link-back (invoice lines) are stored with the id map, in the write
 * that records the version (`IdMapRecord.linkSubIds`). Before, they lived only in the worker's
 * memory and, once the link-back failed, in its retry job: a worker killed between the id-map
 * write and the link-back, or a failed link-back whose retry job could not be stored, left a
 * retry that found the version applied (a replay) and linked the record id alone. The next
 * Connec! version named its lines by nobody's id, and the app created them again.
 */
import { memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { C, createHarness, GROUP, ORG_UID, provisionGroup } from './harness.js';
import { importKilledAfterMapWrite, INVOICES, invoicePuts, killedAfterMapWrite, linkBackRetryNotStored, linkedLineIds, seedInvoice } from './link-sub-ids-durable-scenario.js';

describe('invoice line ids owed by a link-back survive the loss of the worker that held them', () => {
  it('the link-back fails and its retry job cannot be stored: the retry of the record job still links the line ids', () => linkBackRetryNotStored(memoryAdapter()));
  it('the worker is killed right after the id-map write: the redelivered job links the line ids, and the next version re-creates no line', () => killedAfterMapWrite());
  it('an import killed right after the id-map write of a page: the resumed import links the line ids', () => importKilledAfterMapWrite());

  it('a version already linked, delivered again, sends no link-back; a new line is linked and stored in the same write', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const invoice = seedInvoice(h);
    await h.notify({ invoices: [invoice] });
    await h.drain();
    const lineIds = ([...h.app.invoices.values()][0]?.lines ?? []).map((l) => l.id);
    expect(linkedLineIds(h)).toEqual(lineIds);
    expect(invoicePuts(h)).toBe(1);
    // The version our link-back wrote (same content, our ids on it), delivered twice.
    const linked = h.connec.find(GROUP, 'invoices', 'i1');
    await h.notify({ invoices: [linked] });
    await h.drain();
    // `version` is no content: a replay the inbox does not take for the job already done.
    await h.notify({ invoices: [{ ...linked, version: 2 }] });
    await h.drain();
    expect(invoicePuts(h)).toBe(1);

    // Another app adds a line: the update links its id, which the map stores with that version.
    const current = h.connec.find(GROUP, 'invoices', 'i1') as { lines: Record<string, unknown>[] };
    const added = h.connec.edit(GROUP, 'invoices', 'i1', { lines: [...current.lines, { id: [C('l3')], description: 'Gizmo', quantity: 1 }] });
    await h.notify({ invoices: [added] });
    await h.drain();
    const [local] = [...h.app.invoices.values()];
    expect(local?.lines).toHaveLength(3);
    expect(local?.lines.slice(0, 2).map((l) => l.id)).toEqual(lineIds);
    expect(linkedLineIds(h)).toEqual(local?.lines.map((l) => l.id));
    expect(invoicePuts(h)).toBe(2);
    const map = await h.storage.idMaps.find(INVOICES, { connecId: 'i1' });
    expect(JSON.parse(map?.linkSubIds ?? 'null')).toMatchObject({ ids: { lines: local?.lines.map((l) => l.id) } });
    // That version delivered again once linked: nothing to send.
    await h.notify({ invoices: [{ ...added, version: 3 }] });
    await h.notify({ invoices: [h.connec.find(GROUP, 'invoices', 'i1')] });
    await h.drain();
    expect(invoicePuts(h)).toBe(3);
    expect(h.app.invoices.size).toBe(1);
  });

  it('stored text that is not what the engine writes is nothing owed: a replay links the record id alone, and fails nothing', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const invoice = seedInvoice(h);
    await h.notify({ invoices: [invoice] });
    await h.drain();
    const stored = (await h.storage.idMaps.find(INVOICES, { connecId: 'i1' }))?.linkSubIds ?? null;
    const hash = (JSON.parse(stored ?? 'null') as { hash?: unknown } | null)?.hash;
    expect(typeof hash).toBe('string');
    const garbage = [`{"hash":"${String(hash)}",`, `{"hash":"${String(hash)}","ids":{"lines":[1,2]}}`, `{"hash":"${String(hash)}","ids":[]}`, 'null'];
    for (const [k, text] of [...garbage, stored].entries()) {
      await h.storage.idMaps.update(INVOICES, { connecId: 'i1' }, { linkSubIds: text });
      const before = invoicePuts(h);
      // The first version delivered again (`version` is no content): a replay, our record id not on it.
      await h.notify({ invoices: [{ ...invoice, version: k + 1 }] });
      await h.drain();
      const sent = h.connec.batches.flat().filter((op) => op.method === 'put' && op.collection === 'invoices').slice(before);
      expect(sent).toHaveLength(1);
      if (text === stored) expect(JSON.stringify(sent[0]?.record.lines)).toContain('myapp');
      else expect(sent[0]?.record.lines).toBeUndefined();
      expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
    }
  });
});

describe('plain id format: stored line ids are not linked again on every delivery', () => {
  it("the echo of the invoice's link-back and a replay of its first version send no second link-back", async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const env = { group_id: GROUP, channel_id: ORG_UID };
    h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-1' }, 'i-1');
    const invoice = { id: 'i-1', transaction_number: 'INV-1', lines: [{ id: 'l-1', quantity: 1 }], ...env, updated_at: '2016-10-04T00:36:24Z' };
    await h.notify({ invoices: [invoice] });
    await h.drain();
    expect(invoicePuts(h)).toBe(1);
    // Connec! notifies the write our link-back made (a later `updated_at`, same content), then
    // that version and the first one once more (`version` is no content).
    await h.notify({ invoices: [{ ...invoice, updated_at: '2016-10-04T00:40:00Z' }] });
    await h.drain();
    await h.notify({ invoices: [{ ...invoice, updated_at: '2016-10-04T00:40:00Z', version: 2 }] });
    await h.notify({ invoices: [{ ...invoice, version: 3 }] });
    await h.drain();
    expect(invoicePuts(h)).toBe(1);
    expect(h.app.invoices.size).toBe(1);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  });
});
