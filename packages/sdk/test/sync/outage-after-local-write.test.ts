/**
 * One storage outage after the app's local write, then the worker's retry: the outcome is the
 * one without the outage. Each storage call below fails once, either before it writes
 * (`before`) or after it committed with its answer lost (`after`, a connection dropped after
 * COMMIT). Before the fixes, the retry found the version applied (a replay) and skipped what
 * was left: the agreed-content hash (a later local edit back to the old content was never
 * pushed), the push of a local version that won a conflict, and the invoice line ids of the
 * link-back (the next Connec! version re-created the lines).
 */
import { memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { C, createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

type Fault = { repo: 'jobs' | 'idMaps'; method: string; mode: 'before' | 'after' };
type Switch = { armed: boolean; fired: boolean };

/** The first call of `repo.method` made once armed fails (after committing, for `after`). */
function failOnce(inner: StorageAdapter, fault: Fault, state: Switch): StorageAdapter {
  const target = inner[fault.repo] as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const wrapped = { ...target };
  wrapped[fault.method] = async (...args: unknown[]) => {
    if (state.armed && !state.fired) {
      state.fired = true;
      if (fault.mode === 'after') await target[fault.method]?.(...args);
      throw new Error('database unavailable');
    }
    return target[fault.method]?.(...args);
  };
  return Object.assign(Object.create(null), inner, { [fault.repo]: wrapped }) as StorageAdapter;
}

const name = (f: Fault | null) => (f ? `${f.repo}.${f.method} fails ${f.mode === 'after' ? 'after committing' : 'before writing'}` : 'no outage');

describe('an inbound update whose id-map writes meet an outage: the agreed content moves on', () => {
  const faults: (Fault | null)[] = [
    null,
    { repo: 'idMaps', method: 'update', mode: 'before' },
    { repo: 'idMaps', method: 'markApplied', mode: 'before' },
    { repo: 'idMaps', method: 'markApplied', mode: 'after' },
  ];
  for (const fault of faults) {
    it(`${name(fault)}: a local edit back to the pushed content is pushed again`, async () => {
      const state: Switch = { armed: false, fired: false };
      const h = await createHarness({ storage: fault ? failOnce(memoryAdapter(), fault, state) : memoryAdapter() });
      await provisionGroup(h.storage);
      const acme = { id: 'org-local', name: 'Acme', code: null, updatedAt: new Date() };
      h.app.companies.set(acme.id, acme);
      const first = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: acme });
      const connecId = first.connecId as string;
      const edited = h.connec.edit(GROUP, 'organizations', connecId, { name: 'Acme Holdings' });
      state.armed = true;
      expect((await h.notify({ organizations: [edited] })).status).toBe(200);
      await h.drain();
      expect({ fired: state.fired, local: h.app.companies.get(acme.id)?.name, counts: await h.storage.jobs.counts() }).toMatchObject({
        fired: fault !== null,
        local: 'Acme Holdings',
        counts: { pending: 0, running: 0, dead: 0 },
      });
      const back = { ...(h.app.companies.get(acme.id) as typeof acme), name: 'Acme', updatedAt: new Date(Date.now() + 1_000) };
      h.app.companies.set(acme.id, back);
      const again = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: back });
      const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'companies' }, { connecId });
      expect({ status: again.status, inConnec: h.connec.find(GROUP, 'organizations', connecId)?.name, lastError: map?.lastError ?? null }).toEqual({
        status: 'pushed',
        inConnec: 'Acme',
        lastError: null,
      });
    });
  }
});

describe('a local edit that wins a conflict: its push survives an outage', () => {
  const faults: (Fault | null)[] = [
    null,
    { repo: 'idMaps', method: 'find', mode: 'before' },
    { repo: 'idMaps', method: 'update', mode: 'before' },
    { repo: 'idMaps', method: 'update', mode: 'after' },
  ];
  for (const fault of faults) {
    it(`${name(fault)}: Connec! ends with the local version`, async () => {
      const state: Switch = { armed: false, fired: false };
      const h = await createHarness({ storage: fault ? failOnce(memoryAdapter(), fault, state) : memoryAdapter() });
      await provisionGroup(h.storage);
      const person = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
      await h.notify({ people: [person] });
      await h.drain();
      const [local] = [...h.app.contacts.values()];
      if (!local) throw new Error('contact not created');
      // Edited locally well after Connec!'s edit below: the default policy (newest wins) keeps it.
      h.app.contacts.set(local.id, { ...local, jobTitle: 'CEO', updatedAt: new Date(Date.now() + 60_000) });
      const edited = h.connec.edit(GROUP, 'people', 'p1', { last_name: 'Smith' });
      state.armed = true;
      expect((await h.notify({ people: [edited] })).status).toBe(200);
      await h.drain();
      expect({ fired: state.fired, counts: await h.storage.jobs.counts() }).toMatchObject({ fired: fault !== null, counts: { pending: 0, running: 0, dead: 0 } });
      expect(h.app.contacts.get(local.id)).toMatchObject({ lastName: 'Doe', jobTitle: 'CEO' });
      expect(h.connec.find(GROUP, 'people', 'p1')).toMatchObject({ last_name: 'Doe', job_title: 'CEO' });
    });
  }
});

describe('invoice line ids linked back after an outage between the local write and the link-back', () => {
  async function run(fault: Fault | null) {
    const state: Switch = { armed: false, fired: false };
    const h = await createHarness({ storage: fault ? failOnce(memoryAdapter(), fault, state) : memoryAdapter() });
    await provisionGroup(h.storage);
    const invoice = h.connec.seed(
      GROUP,
      'invoices',
      { transaction_number: 'INV-1', lines: [{ id: [C('l1')], description: 'Widget', quantity: 1 }, { id: [C('l2')], description: 'Gadget', quantity: 2 }] },
      'i1',
    );
    state.armed = true;
    expect((await h.notify({ invoices: [invoice] })).status).toBe(200);
    await h.drain();
    expect(state.fired).toBe(fault !== null);
    const [local] = [...h.app.invoices.values()];
    const lineIds = (local?.lines ?? []).map((l) => l.id);
    const inConnec = h.connec.find(GROUP, 'invoices', 'i1') as { lines: { id: { id: string; provider: string }[] }[] };
    return { h, lineIds, linked: inConnec.lines.map((l) => l.id.find((e) => e.provider === 'myapp')?.id ?? null) };
  }
  const wake: Fault = { repo: 'jobs', method: 'wakeMany', mode: 'before' };

  it('no outage: the lines carry our ids in Connec!', async () => {
    const { lineIds, linked } = await run(null);
    expect(linked).toEqual(lineIds);
    expect(lineIds).toHaveLength(2);
  });
  it('jobs.wakeMany (waking records parked on the new invoice) fails: the line ids are still linked', async () => {
    const { lineIds, linked } = await run(wake);
    expect(linked).toEqual(lineIds);
  });
  it('jobs.wakeMany fails: the next Connec! version updates the same lines, none re-created', async () => {
    const { h, lineIds } = await run(wake);
    const current = h.connec.find(GROUP, 'invoices', 'i1') as { lines: Record<string, unknown>[] };
    const edited = h.connec.edit(GROUP, 'invoices', 'i1', { lines: current.lines.map((l, k) => (k === 0 ? { ...l, quantity: 5 } : l)) });
    expect((await h.notify({ invoices: [edited] })).status).toBe(200);
    await h.drain();
    expect([...h.app.invoices.values()][0]?.lines.map((l) => l.id)).toEqual(lineIds);
  });

  // The id-map insert of the created invoice commits and its answer is lost: the retry found
  // the version applied (a replay) and linked the record id alone; the app's line ids, which
  // only the failed attempt held, never reached Connec!, and its next version re-created the lines.
  const insertLost: Fault = { repo: 'idMaps', method: 'insertMany', mode: 'after' };
  const insertRefused: Fault = { repo: 'idMaps', method: 'insertMany', mode: 'before' };
  it('idMaps.insertMany fails after committing: the line ids are still linked', async () => {
    const { lineIds, linked } = await run(insertLost);
    expect(linked).toEqual(lineIds);
    expect(lineIds).toHaveLength(2);
  });
  it('idMaps.insertMany fails after committing: the next Connec! version updates the same lines, none re-created', async () => {
    const { h, lineIds } = await run(insertLost);
    const current = h.connec.find(GROUP, 'invoices', 'i1') as { lines: Record<string, unknown>[] };
    const edited = h.connec.edit(GROUP, 'invoices', 'i1', { lines: current.lines.map((l, k) => (k === 0 ? { ...l, quantity: 5 } : l)) });
    expect((await h.notify({ invoices: [edited] })).status).toBe(200);
    await h.drain();
    expect([...h.app.invoices.values()][0]?.lines.map((l) => l.id)).toEqual(lineIds);
    expect(h.app.invoices.size).toBe(1);
  });
  it('idMaps.insertMany fails before writing: the retry creates the invoice once and links its line ids', async () => {
    const { h, lineIds, linked } = await run(insertRefused);
    expect(linked).toEqual(lineIds);
    expect(h.app.invoices.size).toBe(1);
    expect(h.app.writes.create).toBe(1);
  });
  it('idMaps.insertMany fails after committing during an import: the line ids are linked', async () => {
    const state: Switch = { armed: false, fired: false };
    const h = await createHarness({ storage: failOnce(memoryAdapter(), insertLost, state) });
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-1', lines: [{ id: [C('l1')], description: 'Widget', quantity: 1 }] }, 'i1');
    state.armed = true;
    await expect(h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP })).resolves.toBeDefined();
    expect(state.fired).toBe(true);
    const [local] = [...h.app.invoices.values()];
    const inConnec = h.connec.find(GROUP, 'invoices', 'i1') as { lines: { id: { id: string; provider: string }[] }[] };
    expect(inConnec.lines.map((l) => l.id.find((e) => e.provider === 'myapp')?.id ?? null)).toEqual(local?.lines.map((l) => l.id));
  });
});
