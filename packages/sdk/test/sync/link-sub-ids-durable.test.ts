/**
 * The sub-record ids of a link-back (invoice lines) are stored with the id map, in the write
 * that records the version (`IdMapRecord.linkSubIds`). Before, they lived only in the worker's
 * memory and, once the link-back failed, in its retry job: a worker killed between the id-map
 * write and the link-back, or a failed link-back whose retry job could not be stored, left a
 * retry that found the version applied (a replay) and linked the record id alone. The next
 * Connec! version named its lines by nobody's id, and the app created them again.
 */
import { createSyncModule, memoryAdapter, ServerError } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { buildConnector, C, createHarness, dyingView, GROUP, ORG_UID, provisionGroup, testRuntime } from './harness.js';
import {
  afterMapInsert,
  appLineIds,
  importKilledAfterMapWrite,
  INVOICES,
  invoicePuts,
  killedAfterMapWrite,
  linkBackRetryNotStored,
  linkedLineIds,
  refuseFirstLinkBack,
  seedInvoice,
  sentInvoiceLines,
} from './link-sub-ids-durable-scenario.js';

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
    // (`added` itself lacks our id on its new line: the stored ids are owed, but Connec!'s
    // current version, read before sending them, carries them all.)
    expect(invoicePuts(h)).toBe(2);
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
      // The stored ids are owed to this payload, but Connec!'s current version (read before a
      // link-back built from stored ids) carries them all already: nothing to send. Anything
      // else stored is no ids: the record id alone, which this payload lacks.
      if (text === stored) expect(sent).toHaveLength(0);
      else {
        expect(sent).toHaveLength(1);
        expect(sent[0]?.record.lines).toBeUndefined();
      }
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

describe('stored line ids of a version Connec! has moved on from', () => {
  it("a worker killed before its link-back, another app editing a line before the retry: the retry's link-back does not write the old lines back over that edit, and the edit updates the app's lines instead of creating them again", async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    expect((await h.notify({ invoices: [seedInvoice(h)] })).status).toBe(200);
    let dead = false;
    const runtime = testRuntime(
      dyingView(
        afterMapInsert(h.storage, () => {
          dead = true;
        }),
        () => dead,
      ),
      () => new Date(),
      'dying-instance',
    );
    const dying = createSyncModule(runtime, { connector: buildConnector(h.app), sync: { connecPort: () => h.connec, parkRetryMs: 5, maxAttempts: 4, lockTtlMs: 1_000 } });
    void createWorker(runtime, dying.jobs ?? {}).drain({ pollIntervalMs: 1, concurrency: 1, leaseMs: 1_000 });
    for (let i = 0; i < 2_000 && !dead; i++) await new Promise((r) => setTimeout(r, 5));
    expect(dead).toBe(true);
    const lineIds = appLineIds(h);
    expect(lineIds).toHaveLength(2);
    expect(invoicePuts(h)).toBe(0);
    // Another app sets the second line's quantity to 7 while the dead worker's lease runs out.
    const current = h.connec.find(GROUP, 'invoices', 'i1') as { lines: Record<string, unknown>[] };
    const edited = h.connec.edit(GROUP, 'invoices', 'i1', { lines: current.lines.map((l, k) => (k === 1 ? { ...l, quantity: 7 } : l)) });
    expect((await h.notify({ invoices: [edited] })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_200));
    await h.drain();
    // No link-back sent the first version's lines (quantity 2) over the edit.
    const sentLines = sentInvoiceLines(h);
    expect(sentLines.map((l) => l.quantity)).not.toContain(2);
    expect((h.connec.find(GROUP, 'invoices', 'i1') as { lines: { quantity: number }[] }).lines.map((l) => l.quantity)).toEqual([1, 7]);
    expect([...h.app.invoices.values()][0]?.lines.map((l) => l.quantity)).toEqual([1, 7]);
    expect(h.app.writes.create).toBe(1);
    // The edited version named the lines by Connec!'s ids only (the link-back never landed):
    // the ids stored with the first version, matched by those, kept the app's lines (none
    // created again), and its link-back named them.
    expect(appLineIds(h)).toEqual(lineIds);
    expect(linkedLineIds(h)).toEqual(lineIds);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
  });
});

describe('line ids carried by a link-back retry, of a version Connec! has moved on from', () => {
  it("a link-back refused once, another app editing a line before its retry: the retry does not write the old lines back over that edit, and the edit updates the app's lines instead of creating them again", async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const refused = refuseFirstLinkBack(h, () => {
        // Another app sets the second line's quantity to 7 while our link-back waits for its retry.
        const current = h.connec.find(GROUP, 'invoices', 'i1') as { lines: Record<string, unknown>[] };
        h.connec.edit(GROUP, 'invoices', 'i1', { lines: current.lines.map((l, k) => (k === 1 ? { ...l, quantity: 7 } : l)) });
    });
    expect((await h.notify({ invoices: [seedInvoice(h)] })).status).toBe(200);
    await h.drain();
    expect(refused()).toBe(1);
    const lineIds = appLineIds(h);
    expect(lineIds).toHaveLength(2);
    // The retry (a job carrying the first version and its line ids) sent no line of that
    // version: the only lines sent are the refused first attempt's.
    const sentLines = sentInvoiceLines(h);
    expect(sentLines.map((l) => l.quantity)).toEqual([1, 2]);
    expect((h.connec.find(GROUP, 'invoices', 'i1') as { lines: { quantity: number }[] }).lines.map((l) => l.quantity)).toEqual([1, 7]);
    // Connec!'s edit, delivered: the app updates its two lines (creates none) and they are linked.
    const edited = h.connec.find(GROUP, 'invoices', 'i1');
    expect((await h.notify({ invoices: [edited] })).status).toBe(200);
    await h.drain();
    expect(h.app.invoices.size).toBe(1);
    expect([...h.app.invoices.values()][0]?.lines.map((l) => l.quantity)).toEqual([1, 7]);
    expect(appLineIds(h)).toEqual(lineIds);
    expect(linkedLineIds(h)).toEqual(lineIds);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
  });
});

describe('a link-back sent again reads Connec!: what it finds there', () => {
  it('plain id format, another app editing the invoice before the retry: the retry still links the record id (no line sent)', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const env = { group_id: GROUP, channel_id: ORG_UID };
    h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-1', lines: [{ id: [C('l-1')], quantity: 1 }] }, 'i-1');
    const invoice = { id: 'i-1', transaction_number: 'INV-1', lines: [{ id: 'l-1', quantity: 1 }], ...env, updated_at: '2016-10-04T00:36:24Z' };
    const refused = refuseFirstLinkBack(h, () => {
        h.connec.edit(GROUP, 'invoices', 'i-1', { lines: [{ id: [C('l-1')], quantity: 7 }] });
    });
    await h.notify({ invoices: [invoice] });
    await h.drain();
    expect(refused()).toBe(1);
    const puts = h.connec.batches.flat().filter((op) => op.method === 'put' && op.collection === 'invoices');
    // The refused first attempt, then its retry: the record id alone, no line of the old version.
    expect(puts).toHaveLength(2);
    expect(puts[1]?.record.lines).toBeUndefined();
    const inConnec = h.connec.find(GROUP, 'invoices', 'i-1') as { id: { id: string; provider: string }[]; lines: { quantity: number }[] };
    expect(inConnec.id.find((e) => e.provider === 'myapp')?.id).toBe([...h.app.invoices.keys()][0]);
    expect(inConnec.lines.map((l) => l.quantity)).toEqual([7]);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
  });

  it('Connec! failing that read: the job fails and is retried, and its retry links the line ids', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    refuseFirstLinkBack(h);
    const fetch = h.connec.fetch.bind(h.connec);
    let failedReads = 0;
    h.connec.fetch = async (groupId, collection, id) => {
      if (failedReads++ === 0) throw new ServerError('Connec! unavailable', { service: 'connec', status: 503, method: 'GET', url: `/${groupId}/${collection}/${id}` });
      return fetch(groupId, collection, id);
    };
    await h.notify({ invoices: [seedInvoice(h)] });
    await h.drain();
    expect(failedReads).toBe(2);
    const lineIds = appLineIds(h);
    expect(linkedLineIds(h)).toEqual(lineIds);
    expect(h.app.writes.create).toBe(1);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
  });

  it('the invoice deleted in Connec! before the retry: nothing is sent to it, and the job is not dead-lettered', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const refused = refuseFirstLinkBack(h, () => {
        const list = h.connec.data.get(GROUP)?.get('invoices') ?? [];
        list.splice(0, list.length);
    });
    await h.notify({ invoices: [seedInvoice(h)] });
    await h.drain();
    expect(refused()).toBe(1);
    expect(h.connec.fetchCalls.filter((c) => c.collection === 'invoices')).toHaveLength(1);
    expect(invoicePuts(h)).toBe(1);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
  });
});

describe('line ids carried over to a newer version: a Connec! line id on two lines', () => {
  it('a line copied with its Connec! id before the link-back landed: the app id goes to one line, the copy is a new line', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const refused = refuseFirstLinkBack(h, () => {
        // Another app copies the first line, its id array included, while our link-back waits.
        const current = h.connec.find(GROUP, 'invoices', 'i1') as { lines: Record<string, unknown>[] };
        h.connec.edit(GROUP, 'invoices', 'i1', { lines: [...current.lines, { ...current.lines[0], quantity: 3 }] });
    });
    await h.notify({ invoices: [seedInvoice(h)] });
    await h.drain();
    expect(refused()).toBe(1);
    const lineIds = appLineIds(h);
    expect(lineIds).toHaveLength(2);
    await h.notify({ invoices: [h.connec.find(GROUP, 'invoices', 'i1')] });
    await h.drain();
    const [local] = [...h.app.invoices.values()];
    expect(local?.lines.map((l) => l.quantity)).toEqual([1, 2, 3]);
    const now = appLineIds(h);
    expect(now.slice(0, 2)).toEqual(lineIds);
    // Three lines, three ids: the copy is not given the first line's id (the app would merge them).
    expect(new Set(now).size).toBe(3);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
  });
});

describe('an app whose local.update returns no sub-record ids (the docs allow it)', () => {
  it('the line ids it was given for a newer version are linked back, and the version after updates its lines instead of creating them again', async () => {
    const h = await createHarness({ invoiceUpdateReturnsNothing: true });
    await provisionGroup(h.storage);
    const refused = refuseFirstLinkBack(h, () => {
      // Another app sets the second line's quantity to 7 while our link-back waits for its retry.
      const current = h.connec.find(GROUP, 'invoices', 'i1') as { lines: Record<string, unknown>[] };
      h.connec.edit(GROUP, 'invoices', 'i1', { lines: current.lines.map((l, k) => (k === 1 ? { ...l, quantity: 7 } : l)) });
    });
    expect((await h.notify({ invoices: [seedInvoice(h)] })).status).toBe(200);
    await h.drain();
    expect(refused()).toBe(1);
    const lineIds = appLineIds(h);
    expect(lineIds).toHaveLength(2);
    // The retry found Connec! changed and linked the record id alone: the lines wait for the edit.
    expect(linkedLineIds(h)).toEqual([null, null]);
    // The edit, delivered: the engine gives the app its line ids (matched by Connec!'s line ids),
    // the app updates those lines and returns nothing; they are its lines still, and linked.
    expect((await h.notify({ invoices: [h.connec.find(GROUP, 'invoices', 'i1')] })).status).toBe(200);
    await h.drain();
    expect(appLineIds(h)).toEqual(lineIds);
    expect(linkedLineIds(h)).toEqual(lineIds);
    // Another app edits the first line: the version names the lines by our ids, the app updates
    // them (creates none), and nothing is linked again.
    const puts = invoicePuts(h);
    const current = h.connec.find(GROUP, 'invoices', 'i1') as { lines: Record<string, unknown>[] };
    const edited = h.connec.edit(GROUP, 'invoices', 'i1', { lines: current.lines.map((l, k) => (k === 0 ? { ...l, quantity: 5 } : l)) });
    expect((await h.notify({ invoices: [edited] })).status).toBe(200);
    await h.drain();
    expect(appLineIds(h)).toEqual(lineIds);
    expect([...h.app.invoices.values()][0]?.lines.map((l) => l.quantity)).toEqual([5, 7]);
    expect(h.app.writes.create).toBe(1);
    expect(invoicePuts(h)).toBe(puts);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
  });

  it('a line the update added (null: only the app knows its id) stays unlinked; the lines it was given are linked', async () => {
    const h = await createHarness({ invoiceUpdateReturnsNothing: true });
    await provisionGroup(h.storage);
    expect((await h.notify({ invoices: [seedInvoice(h)] })).status).toBe(200);
    await h.drain();
    const lineIds = appLineIds(h);
    expect(linkedLineIds(h)).toEqual(lineIds);
    const puts = invoicePuts(h);
    const current = h.connec.find(GROUP, 'invoices', 'i1') as { lines: Record<string, unknown>[] };
    const added = h.connec.edit(GROUP, 'invoices', 'i1', { lines: [...current.lines, { id: [C('l3')], description: 'Gizmo', quantity: 1 }] });
    expect((await h.notify({ invoices: [added] })).status).toBe(200);
    await h.drain();
    const after = appLineIds(h);
    expect(after.slice(0, 2)).toEqual(lineIds);
    expect(after).toHaveLength(3);
    // Nothing to link: the two lines carry our ids already, and the app did not say the third's.
    expect(invoicePuts(h)).toBe(puts);
    expect(linkedLineIds(h)).toEqual([...lineIds, null]);
  });
});
