/**
 * CONNECTORS.md §F scenarios 4, 5, 6, 8, 12, 13, 14 and 15 end to end, on every storage adapter:
 * the sandbox's Connec! (and its notification sender), the app served over loopback HTTP
 * (`mno.handler`), in-process workers. (§F1-3, 7, 9-11 are in sync.e2e.test.ts; the SDK's own
 * tests cover each with a fake Connec! too.)
 *
 * Records the test writes "as the app" (with the marketplace's credentials) are not notified
 * back, as in Connec!: that is how a scenario gets a record into Connec! that the app has not
 * seen, then delivers the notification body it wants.
 */
import type { JsonObject } from '@org/maestrano-sandbox';
import { ImportBusyError, type SyncEvent } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFerretDb } from './app.js';
import { type StorageKind, type SyncHarness, startSyncHarness, TENANT } from './harness.js';
import { ScenarioApp, scenarioConnector } from './scenario-app.js';

type IdEntry = { id: string; provider: string; realm: string };
type Rec = Record<string, unknown>;
const idsOf = (value: unknown): IdEntry[] => (Array.isArray(value) ? (value as IdEntry[]) : []);

const ferretDbMissing = findFerretDb() ? null : 'no ferretdb binary (FERRETDB_BIN, /usr/local/bin/ferretdb or PATH)';
if (ferretDbMissing && process.env.CI) throw new Error(`sync scenarios: the MongoDB (FerretDB) variant cannot run: ${ferretDbMissing}; CI must run it`);
if (ferretDbMissing) console.warn(`sync scenarios: MongoDB (FerretDB) variant skipped: ${ferretDbMissing}`);
const backends: StorageKind[] = ['memory', 'postgres', 'sqlite', 'mongo'];

for (const storage of backends) {
  describe.skipIf(storage === 'mongo' && ferretDbMissing !== null)(`§F scenarios against the sandbox (${storage} storage)`, () => {
    let h: SyncHarness;
    let app: ScenarioApp;
    let apiId: string;
    let auth: string;
    let notificationUrl: string;
    const events: SyncEvent[] = [];

    /** POSTs a notification body to the app as Connec! does; the status and the answer. */
    const notify = async (body: unknown, authorization = auth): Promise<{ status: number; json: Rec | null }> => {
      const res = await fetch(notificationUrl, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, json: text.startsWith('{') ? (JSON.parse(text) as Rec) : null };
    };
    /** Creates a record in Connec! as the app (not notified back); the record as a notification carries it. */
    const writeAsApp = async (groupId: string, collection: string, record: Rec): Promise<Rec> => {
      const res = await fetch(`${h.sandbox.url}/batch`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ sequential: true, ops: [{ method: 'post', url: `/api/v2/${groupId}/${collection}/`, params: { [collection]: record } }] }),
      });
      const [result] = ((await res.json()) as { results: { status: number; body: Record<string, Rec> }[] }).results;
      expect(result?.status).toBe(201);
      const id = connecIdOf(result?.body[collection]?.id);
      return h.sandbox.admin.getRecord(groupId, collection, id, { externalIds: true });
    };
    const connecIdOf = (id: unknown): string => (typeof id === 'string' ? id : (idsOf(id).find((e) => e.provider === 'connec')?.id ?? ''));
    const ours = (record: Rec): IdEntry[] => idsOf(record.id).filter((e) => e.provider === apiId);
    const localIdOf = async (groupId: string, entity: string, connecId: string) =>
      (await h.storage.idMaps.find({ tenant: TENANT, groupId, entity }, { connecId }))?.localId ?? null;
    const delivered = async () => {
      await h.sandbox.admin.waitForDeliveries(10_000);
      await h.drain();
    };

    beforeAll(async () => {
      app = new ScenarioApp();
      // parkRetryMs: a parked record is due again after 0.5 s (doubling): §F5 expects one drain to
      // leave it parked. At 50 ms, a drain slowed down by a loaded machine (CI) claimed it again
      // before it ended, every attempt of the four, and dead-lettered the waiting record.
      h = await startSyncHarness({ storage, connector: scenarioConnector(app), sync: { maxAttempts: 4, parkRetryMs: 500 } });
      const market = h.sandbox.credentials.marketplaces[0];
      apiId = market?.apiId ?? '';
      auth = `Basic ${Buffer.from(`${market?.apiId}:${market?.apiKey}`).toString('base64')}`;
      notificationUrl = `${h.appUrl}/maestrano/connec/notifications/${TENANT}`;
      h.mno.sync.on((e) => events.push(e));
    }, 120_000);
    afterAll(async () => {
      await h?.close();
    });

    it('§F4 one body for several groups and entities: routed per group, unknown group ignored, "Invoice" normalised, a mapper failure retried then dead-lettered alone; wrong credentials store nothing', async () => {
      const a = await h.provisionGroup('F4 A');
      const b = await h.provisionGroup('F4 B');
      await h.drain();
      const org = await writeAsApp(a.groupId, 'organizations', { name: 'Org One' });
      const jane = await writeAsApp(b.groupId, 'people', { first_name: 'Jane', last_name: 'Doe' });
      const broken = await writeAsApp(a.groupId, 'people', { first_name: 'Bob', last_name: 'Broken' });
      const item = await writeAsApp(a.groupId, 'items', { name: 'Widget' });
      const invoice = await writeAsApp(a.groupId, 'invoices', { transaction_number: 'INV-1', type: 'CUSTOMER', lines: [] });
      const body = { organizations: [org], people: [jane, broken], items: [{ ...item, group_id: 'cld-unknown' }], Invoice: [invoice] };

      const before = await h.storage.jobs.counts();
      const wrong = `Basic ${Buffer.from(`${apiId}:not-the-key`).toString('base64')}`;
      expect((await notify(body, wrong)).status).toBe(401);
      expect(await h.storage.jobs.counts()).toEqual(before);

      app.poisonLastName = 'Broken';
      const deadBefore = h.mno.sync.counters().deadLettered;
      const answer = await notify(body);
      expect(answer.status).toBe(200);
      expect(answer.json).toMatchObject({ received: 5, stored: 5 });
      await h.drain();
      const A = app.group(a.groupId);
      expect([...A.companies.values()].map((c) => c.name)).toEqual(['Org One']);
      expect([...A.invoices.values()].map((i) => i.number)).toEqual(['INV-1']);
      expect([...A.contacts.values()]).toEqual([]);
      expect(A.items.size).toBe(0);
      expect(app.group('cld-unknown').items.size).toBe(0);
      expect([...app.group(b.groupId).contacts.values()].map((c) => c.lastName)).toEqual(['Doe']);
      // Linked back in Connec! (each group's record with its own realm), the invoice included.
      expect(ours(await h.sandbox.admin.getRecord(b.groupId, 'people', connecIdOf(jane.id), { externalIds: true }))).toEqual([
        { id: [...app.group(b.groupId).contacts.keys()][0], provider: apiId, realm: b.groupId },
      ]);
      expect(ours(await h.sandbox.admin.getRecord(a.groupId, 'invoices', connecIdOf(invoice.id), { externalIds: true }))).toHaveLength(1);

      const dead = (await h.mno.sync.deadLetters({ tenant: TENANT })).filter((d) => d.groupId === a.groupId);
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ entity: 'contacts', connecId: connecIdOf(broken.id), attempts: 4 });
      expect(dead[0]?.error?.message).toContain('mapper bug');
      expect(h.mno.sync.counters().deadLettered - deadBefore).toBe(1);
      // The code fixed, the dead letter requeued: applied.
      app.poisonLastName = null;
      expect(await h.mno.sync.retryDeadLetter(dead[0]?.jobId ?? '')).toBe(true);
      await h.drain();
      expect([...A.contacts.values()].map((c) => c.lastName)).toEqual(['Broken']);
      expect((await h.mno.sync.deadLetters({ tenant: TENANT })).filter((d) => d.groupId === a.groupId)).toEqual([]);
    }, 60_000);

    it('§F5 out-of-order references: parked until the organization arrives, fetched on demand, or dead-lettered when it never resolves', async () => {
      const { groupId } = await h.provisionGroup('F5 Co');
      await h.drain();
      const tables = app.group(groupId);

      // (a) The organization is in Connec!, but not yet to be read there (404, as just after
      // another app wrote it): the person waits for it.
      const late = await writeAsApp(groupId, 'organizations', { name: 'Late Org' });
      const lateId = connecIdOf(late.id);
      const outage = await h.sandbox.admin.addFault({ path: `/api/v2/*/organizations/${lateId}*`, kind: 'status', status: 404, count: 1000 });
      const parkedBefore = h.mno.sync.counters().parked;
      const waiting = await h.sandbox.admin.createRecord(groupId, 'people', { first_name: 'Pat', last_name: 'Parked', organization_id: lateId });
      await h.sandbox.admin.waitForDeliveries(10_000);
      await h.drain(1);
      expect(tables.contacts.size).toBe(0);
      expect(await localIdOf(groupId, 'contacts', String(waiting.id))).toBeNull();
      expect(h.mno.sync.counters().parked).toBeGreaterThan(parkedBefore);
      expect((await h.storage.jobs.counts()).pending).toBeGreaterThanOrEqual(1);
      await h.sandbox.admin.removeFault(outage.id);
      // Its notification arrives: created, and the person applied with it.
      await h.sandbox.admin.updateRecord(groupId, 'organizations', lateId, { name: 'Late Org Pty' });
      await delivered();
      const lateLocal = await localIdOf(groupId, 'companies', lateId);
      expect(tables.companies.get(lateLocal ?? '')?.name).toBe('Late Org Pty');
      const pat = tables.contacts.get((await localIdOf(groupId, 'contacts', String(waiting.id))) ?? '');
      expect(pat).toMatchObject({ lastName: 'Parked', companyId: lateLocal });

      // (b) Never notified: fetched from Connec! when the person needs it, and linked back.
      const quiet = await writeAsApp(groupId, 'organizations', { name: 'Fetched Org' });
      const quietId = connecIdOf(quiet.id);
      const fetched = await h.sandbox.admin.createRecord(groupId, 'people', { first_name: 'Fay', last_name: 'Fetched', organization_id: quietId });
      await delivered();
      const quietLocal = await localIdOf(groupId, 'companies', quietId);
      expect(tables.companies.get(quietLocal ?? '')?.name).toBe('Fetched Org');
      expect(tables.contacts.get((await localIdOf(groupId, 'contacts', String(fetched.id))) ?? '')?.companyId).toBe(quietLocal);
      expect(ours(await h.sandbox.admin.getRecord(groupId, 'organizations', quietId, { externalIds: true }))).toEqual([{ id: quietLocal, provider: apiId, realm: groupId }]);

      // (c) A reference to nothing: retried, then a listed dead letter, never dropped.
      const person = await writeAsApp(groupId, 'people', { first_name: 'Nell', last_name: 'Never' });
      const missing = { id: 'o-missing-f5', provider: 'connec', realm: String(person.channel_id) };
      expect((await notify({ people: [{ ...person, organization_id: [missing] }] })).status).toBe(200);
      await h.drain();
      expect([...tables.contacts.values()].map((c) => c.lastName).sort()).toEqual(['Fetched', 'Parked']);
      const dead = (await h.mno.sync.deadLetters({ tenant: TENANT })).filter((d) => d.groupId === groupId);
      expect(dead.map((d) => d.connecId)).toEqual([connecIdOf(person.id)]);
      expect(dead[0]?.error?.message).toContain('o-missing-f5');
    }, 60_000);

    it('§F6 an invoice with lines: sub-record ids linked back per line; an added line creates only that line', async () => {
      const { groupId } = await h.provisionGroup('F6 Co');
      await h.drain();
      const tables = app.group(groupId);
      const person = await h.sandbox.admin.createRecord(groupId, 'people', { first_name: 'Ivy', last_name: 'Invoiced' });
      const item = await h.sandbox.admin.createRecord(groupId, 'items', { name: 'Widget' });
      const invoice = await h.sandbox.admin.createRecord(groupId, 'invoices', {
        transaction_number: 'INV-1009',
        type: 'CUSTOMER',
        status: 'AUTHORISED',
        person_id: String(person.id),
        lines: [
          { item_id: String(item.id), quantity: 2, unit_price: { net_amount: 11.9, tax_rate: 10, currency: 'AUD' } },
          { description: 'Shipping', quantity: 1, unit_price: { total_amount: 5, tax_rate: 20, currency: 'AUD' } },
        ],
      });
      await delivered();
      const invoiceId = String(invoice.id);
      const local = tables.invoices.get((await localIdOf(groupId, 'invoices', invoiceId)) ?? '');
      expect(local).toMatchObject({ number: 'INV-1009', contactId: await localIdOf(groupId, 'contacts', String(person.id)) });
      expect(local?.lines.map((l) => l.itemId)).toEqual([await localIdOf(groupId, 'items', String(item.id)), null]);
      const [lnA, lnB] = local?.lines.map((l) => l.id) ?? [];
      const remote = await h.sandbox.admin.getRecord(groupId, 'invoices', invoiceId, { externalIds: true });
      expect(ours(remote)).toEqual([{ id: local?.id, provider: apiId, realm: groupId }]);
      const remoteLines = remote.lines as Rec[];
      expect(remoteLines.map((l) => ours(l).map((e) => e.id))).toEqual([[lnA], [lnB]]);

      // Another app adds a line: the known lines keep their ids, only the new one gets one.
      const plain = await h.sandbox.admin.getRecord(groupId, 'invoices', invoiceId);
      await h.sandbox.admin.updateRecord(groupId, 'invoices', invoiceId, { lines: [...(plain.lines as JsonObject[]), { description: 'Gift wrap', quantity: 1 }] });
      await delivered();
      const after = tables.invoices.get(local?.id ?? '');
      expect(after?.lines.map((l) => l.id).slice(0, 2)).toEqual([lnA, lnB]);
      const lnC = after?.lines[2]?.id;
      expect(lnC).toMatch(/^ln-/);
      expect([lnA, lnB]).not.toContain(lnC);
      expect(tables.invoices.size).toBe(1);
      const linked = (await h.sandbox.admin.getRecord(groupId, 'invoices', invoiceId, { externalIds: true })).lines as Rec[];
      expect(linked.map((l) => ours(l).map((e) => e.id))).toEqual([[lnA], [lnB], [lnC]]);
    }, 60_000);

    it('§F8 both sides changed since the last sync: the newer side wins, the local winner is pushed, and each conflict is reported', async () => {
      const { groupId } = await h.provisionGroup('F8 Co');
      await h.drain();
      const tables = app.group(groupId);
      const row = { id: 'per-f8', firstName: 'Jane', lastName: 'Doe', jobTitle: 'Dev', companyId: null, updatedAt: new Date() };
      tables.contacts.set(row.id, row);
      const pushed = await h.mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: row });
      expect(pushed.status).toBe('pushed');
      const connecId = pushed.connecId ?? '';
      const conflicts = () => events.filter((e) => e.type === 'conflict' && e.groupId === groupId);

      // The app edits (not pushed yet), then Connec! changes it a moment later: within the skew
      // tolerance, the default tie-breaker gives it to Connec!.
      await new Promise((resolve) => setTimeout(resolve, 10));
      tables.contacts.set(row.id, { ...row, jobTitle: 'VP Eng', updatedAt: new Date() });
      await h.sandbox.admin.updateRecord(groupId, 'people', connecId, { job_title: 'CTO' });
      await delivered();
      expect(tables.contacts.get(row.id)?.jobTitle).toBe('CTO');
      expect(conflicts()).toMatchObject([{ connecId, localId: row.id, winner: 'connec' }]);

      // The app's edit is the later one: it stays, and Connec! gets it.
      tables.contacts.set(row.id, { ...row, jobTitle: 'Head of Eng', updatedAt: new Date(Date.now() + 60_000) });
      await h.sandbox.admin.updateRecord(groupId, 'people', connecId, { first_name: 'Janet' });
      await delivered();
      expect(tables.contacts.get(row.id)).toMatchObject({ firstName: 'Jane', jobTitle: 'Head of Eng' });
      expect(conflicts().map((e) => (e.type === 'conflict' ? e.winner : null))).toEqual(['connec', 'local']);
      expect(await h.sandbox.admin.getRecord(groupId, 'people', connecId)).toMatchObject({ first_name: 'Jane', job_title: 'Head of Eng' });
    }, 60_000);

    it('§F12 a record deleted in the app tombstones its id map (no more writes or pushes); an INACTIVE item is archived', async () => {
      const { groupId } = await h.provisionGroup('F12 Co');
      await h.drain();
      const tables = app.group(groupId);
      const row = { id: 'per-f12', firstName: 'Gone', lastName: 'Soon', jobTitle: null, companyId: null, updatedAt: new Date(0) };
      tables.contacts.set(row.id, row);
      const pushed = await h.mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: row });
      tables.deleted.add(row.id);
      tables.contacts.delete(row.id);
      await h.sandbox.admin.updateRecord(groupId, 'people', pushed.connecId ?? '', { job_title: 'CEO' });
      await delivered();
      const map = await h.storage.idMaps.find({ tenant: TENANT, groupId, entity: 'contacts' }, { localId: row.id });
      expect(map?.tombstonedAt).toBeInstanceOf(Date);
      expect(tables.contacts.size).toBe(0);
      expect(await h.mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: { ...row, jobTitle: 'X' } })).toMatchObject({ status: 'skipped', error: 'tombstoned' });
      expect((await h.sandbox.admin.getRecord(groupId, 'people', pushed.connecId ?? '')).job_title).toBe('CEO');

      const item = await h.sandbox.admin.createRecord(groupId, 'items', { name: 'Old widget', status: 'ACTIVE' });
      await delivered();
      const itemId = (await localIdOf(groupId, 'items', String(item.id))) ?? '';
      expect(tables.items.get(itemId)).toMatchObject({ name: 'Old widget', archived: false });
      await h.sandbox.admin.updateRecord(groupId, 'items', String(item.id), { status: 'INACTIVE' });
      await delivered();
      expect(tables.items.get(itemId)).toMatchObject({ name: 'Old widget', archived: true });
      expect(tables.items.size).toBe(1);
    }, 60_000);

    it('§F13 the singular company: imported once, linked back on its singular path, sparse shapes neither crash nor reach Connec! as empty objects', async () => {
      const { groupId } = await h.provisionGroup('F13 Co');
      await h.drain();
      const tables = app.group(groupId);
      const maps = await h.storage.idMaps.list({ tenant: TENANT, groupId, entity: 'company' }, { limit: 5 });
      expect(maps).toHaveLength(1);
      const settingsId = maps[0]?.localId ?? '';
      expect([...tables.settings.values()]).toEqual([{ id: settingsId, name: 'F13 Co', email: null, billingLine1: null }]);
      const [linked] = await h.sandbox.admin.listRecords(groupId, 'company', { externalIds: true });
      expect(linked && ours(linked)).toEqual([{ id: settingsId, provider: apiId, realm: groupId }]);
      const connecId = maps[0]?.connecId ?? '';

      // Another app fills in nested shapes, some of them empty.
      await h.sandbox.admin.updateRecord(groupId, 'company', connecId, {
        email: { address: 'hi@acme.io' },
        address: { billing: { line1: '1 George St' }, shipping2: {} },
      });
      await delivered();
      expect(tables.settings.get(settingsId)).toMatchObject({ email: 'hi@acme.io', billingLine1: '1 George St' });

      // The app's change pushed: only what it has reaches Connec!. Connec! deep-merges a put, so
      // an empty \`billing2\` or \`shipping\` sent (its toConnec returns them) would show up here.
      const pushed = await h.mno.sync.push({ tenant: TENANT, groupId, entity: 'company', record: { id: settingsId, name: 'Acme Pty', email: null, billingLine1: null } });
      expect(pushed).toMatchObject({ status: 'pushed', connecId });
      const [remote] = await h.sandbox.admin.listRecords(groupId, 'company');
      expect(remote?.name).toBe('Acme Pty');
      expect(remote?.address).toEqual({ billing: { line1: '1 George St' }, shipping2: {} });
      expect(JSON.stringify(remote?.email)).toBe('{"address":"hi@acme.io"}');

      const creates = tables.writes.create;
      const report = await h.mno.sync.importGroup({ tenant: TENANT, groupId });
      expect(report.entities.company?.created ?? 0).toBe(0);
      expect(tables.writes.create).toBe(creates);
      expect(await h.storage.idMaps.list({ tenant: TENANT, groupId, entity: 'company' }, { limit: 5 })).toHaveLength(1);
    }, 60_000);

    it('§F15 the first import and a notification of the same new record, on two workers at once: one local create, one id map, one link-back', async () => {
      const group = await h.sandbox.admin.createGroup({ marketplace: TENANT, name: 'F15 Co' });
      const item = await writeAsApp(group.id, 'items', { name: 'Contended' });
      const user = await h.sandbox.admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
      expect(await h.login(user.id, group.id)).toBe(200);
      expect((await notify({ items: [item] })).status).toBe(200);
      await Promise.all([h.drain(), h.drain()]);
      const tables = app.group(group.id);
      expect([...tables.items.values()].map((i) => i.name)).toEqual(['Contended']);
      expect(await h.storage.idMaps.list({ tenant: TENANT, groupId: group.id, entity: 'items' }, { limit: 5 })).toHaveLength(1);
      expect(ours(await h.sandbox.admin.getRecord(group.id, 'items', connecIdOf(item.id), { externalIds: true }))).toEqual([
        { id: [...tables.items.keys()][0], provider: apiId, realm: group.id },
      ]);
    }, 60_000);

    it('§F15 two imports of one group at once: the second is refused by the lease lock, nothing is created twice', async () => {
      const group = await h.sandbox.admin.createGroup({ marketplace: TENANT, name: 'F15 Twice' });
      for (let i = 0; i < 5; i++) await writeAsApp(group.id, 'items', { name: `Item ${i}` });
      const user = await h.sandbox.admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
      expect(await h.login(user.id, group.id)).toBe(200);
      const results = await Promise.allSettled([h.mno.sync.importGroup({ tenant: TENANT, groupId: group.id }), h.mno.sync.importGroup({ tenant: TENANT, groupId: group.id })]);
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(refused).toHaveLength(1);
      expect(refused[0]?.reason).toBeInstanceOf(ImportBusyError);
      // The import job SSO queued runs too: it finds everything imported.
      await h.drain();
      const tables = app.group(group.id);
      expect([...tables.items.values()].map((i) => i.name).sort()).toEqual(['Item 0', 'Item 1', 'Item 2', 'Item 3', 'Item 4']);
      expect(tables.writes.create).toBe(6);
      expect(await h.storage.idMaps.list({ tenant: TENANT, groupId: group.id, entity: 'items' }, { limit: 10 })).toHaveLength(5);
    }, 60_000);

    // Last: the purge leaves a sweep job due a minute later, which `drain()` would wait for.
    it('§F14 switches, historical cutoff, record opt-out, then account deletion purging the group', async () => {
      const group = await h.sandbox.admin.createGroup({ marketplace: TENANT, name: 'F14 Co' });
      const old = await writeAsApp(group.id, 'organizations', { name: 'Old' });
      await new Promise((resolve) => setTimeout(resolve, 5));
      const importSince = new Date(Date.parse(String(old.created_at)) + 1).toISOString();
      await new Promise((resolve) => setTimeout(resolve, 5));
      const recent = await writeAsApp(group.id, 'organizations', { name: 'New' });
      expect(Date.parse(String(recent.created_at))).toBeGreaterThan(Date.parse(importSince));
      const user = await h.sandbox.admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
      expect(await h.login(user.id, group.id)).toBe(200);
      // Set before the import SSO queued has run.
      await h.mno.sync.updateGroupSettings({
        tenant: TENANT,
        groupId: group.id,
        update: (settings) => ({ ...settings, sync: { importSince, entities: { items: { inbound: false }, contacts: { inbound: false } } } }),
      });
      await h.drain();
      const tables = app.group(group.id);
      expect([...tables.companies.values()].map((c) => c.name)).toEqual(['New']);

      // Inbound off: another app's item and person are not applied; contacts still go out.
      await h.sandbox.admin.createRecord(group.id, 'items', { name: 'Ignored item' });
      await h.sandbox.admin.createRecord(group.id, 'people', { first_name: 'Ignored', last_name: 'Person' });
      await delivered();
      expect(tables.items.size).toBe(0);
      expect(tables.contacts.size).toBe(0);
      const shared = { id: 'per-f14', firstName: 'Sam', lastName: 'Shared', jobTitle: null, companyId: null, updatedAt: new Date() };
      expect(await h.mno.sync.push({ tenant: TENANT, groupId: group.id, entity: 'contacts', record: shared })).toMatchObject({ status: 'pushed' });
      // A record the app flags "do not share" is never pushed.
      const secret = { ...shared, id: 'per-f14-private', lastName: 'Private' };
      expect(await h.mno.sync.push({ tenant: TENANT, groupId: group.id, entity: 'contacts', record: secret })).toMatchObject({ status: 'skipped' });
      expect((await h.sandbox.admin.listRecords(group.id, 'people')).map((p) => p.last_name).sort()).toEqual(['Person', 'Shared']);

      // Historical data wanted after all: a full import brings the older record in, once.
      const full = await h.mno.sync.importGroup({ tenant: TENANT, groupId: group.id, full: true });
      expect(full.entities.companies).toMatchObject({ created: 1 });
      expect([...tables.companies.values()].map((c) => c.name).sort()).toEqual(['New', 'Old']);

      // The account is deleted on Maestrano: the webhook purges its id maps and cursors.
      const scope = { tenant: TENANT, groupId: group.id };
      expect((await h.storage.idMaps.list({ ...scope, entity: 'companies' }, { limit: 5 })).length).toBe(2);
      const { delivery } = await h.sandbox.admin.cancelGroup(group.id, { webhook: true });
      expect(delivery).not.toBeNull();
      await h.sandbox.admin.waitForDeliveries(10_000);
      expect((await h.storage.groups.get(TENANT, group.id))?.status).toBe('cancelled');
      // Not `drain()`: the purge schedules a sweep a minute later, which would keep it waiting.
      await h.drain(3);
      for (const entity of ['company', 'companies', 'contacts']) expect(await h.storage.idMaps.list({ ...scope, entity }, { limit: 5 })).toEqual([]);
      expect(await h.storage.cursors.list(TENANT, group.id)).toEqual([]);
    }, 60_000);
  });
}
