/**
 * A record whose reference points at itself (an item that is its own parent, `parent_item_id`
 * declared as a reference to the item's own entity), against the sandbox: on its first
 * notification, fetched on demand for a record that references it, and in an import. It is
 * created with that reference empty, then updated once with its own local id; never parked on
 * itself (which never arrives: it dead-lettered after the parking retries). With plain ids, it
 * is linked back even when that second write fails (its retry, an update, links nothing back).
 */
import { defineConnector, defineEntity, type SyncEvent } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StorageKind, type SyncHarness, startSyncHarness, TENANT } from './harness.js';

type Rec = Record<string, unknown>;
type IdEntry = { id: string; provider: string; realm: string };
interface ItemRow {
  id: string;
  name: string;
  parentId: string | null;
}
interface InvoiceRow {
  id: string;
  number: string;
  itemIds: (string | null)[];
}

/** The app's tables (per group) and its writes. */
class SelfRefApp {
  items = new Map<string, ItemRow>();
  invoices = new Map<string, InvoiceRow>();
  writes = { create: 0, update: 0 };
  /** What each item write wrote (`create`/`update`, with the parent it had). */
  itemWrites: { op: 'create' | 'update'; id: string; parentId: string | null }[] = [];
  /** The next item update throws (once): the app failing the write that resolves the reference. */
  failNextItemUpdate = false;
  readonly #keys = new Map<string, string>();
  #seq = 0;
  next(prefix: string): string {
    this.#seq++;
    return `${prefix}-${this.#seq}`;
  }
  /** Exactly-once per idempotency key. */
  once(key: string, make: () => string): string {
    const had = this.#keys.get(key);
    if (had) return had;
    const id = make();
    this.#keys.set(key, id);
    this.writes.create++;
    return id;
  }
}

function selfRefConnector(app: SelfRefApp) {
  const items = defineEntity({
    name: 'items',
    connec: 'items',
    direction: 'inbound',
    references: { parent_item_id: 'items' },
    toLocal: (item: Rec) => ({ name: String(item.name ?? ''), parentId: typeof item.parent_item_id === 'string' ? item.parent_item_id : null }),
    local: {
      create: async (data, ctx) => ({
        id: app.once(ctx.idempotencyKey, () => {
          const id = app.next('sku');
          app.items.set(id, { id, ...data });
          app.itemWrites.push({ op: 'create', id, parentId: data.parentId });
          return id;
        }),
      }),
      update: async (id, data) => {
        if (app.failNextItemUpdate) {
          app.failNextItemUpdate = false;
          throw new Error('items table locked');
        }
        if (!app.items.has(id)) return { gone: true };
        app.items.set(id, { id, ...data });
        app.itemWrites.push({ op: 'update', id, parentId: data.parentId });
        app.writes.update++;
        return undefined;
      },
    },
  });
  const invoices = defineEntity({
    name: 'invoices',
    connec: 'invoices',
    direction: 'inbound',
    references: { 'lines/item_id': 'items' },
    toLocal: (inv: Rec) => ({
      number: String(inv.transaction_number ?? ''),
      itemIds: (Array.isArray(inv.lines) ? (inv.lines as Rec[]) : []).map((l) => (typeof l.item_id === 'string' ? l.item_id : null)),
    }),
    local: {
      create: async (data, ctx) => ({
        id: app.once(ctx.idempotencyKey, () => {
          const id = app.next('inv');
          app.invoices.set(id, { id, ...data });
          return id;
        }),
      }),
      update: async (id, data) => {
        if (!app.invoices.has(id)) return { gone: true };
        app.invoices.set(id, { id, ...data });
        app.writes.update++;
        return undefined;
      },
    },
  });
  return defineConnector({ entities: [items, invoices] });
}

const backends: StorageKind[] = ['memory', 'postgres'];

for (const storage of backends) {
  describe(`a record referencing itself (${storage} storage)`, () => {
    let h: SyncHarness;
    let app: SelfRefApp;
    let apiId: string;
    let auth: string;
    const events: SyncEvent[] = [];

    const idsOf = (value: unknown): IdEntry[] => (Array.isArray(value) ? (value as IdEntry[]) : []);
    const connecIdOf = (id: unknown): string => (typeof id === 'string' ? id : (idsOf(id).find((e) => e.provider === 'connec')?.id ?? ''));
    const ours = (record: Rec): IdEntry[] => idsOf(record.id).filter((e) => e.provider === apiId);
    const mapOf = (groupId: string, entity: string, connecId: string) => h.storage.idMaps.find({ tenant: TENANT, groupId, entity }, { connecId });
    /** Writes through Connec!'s batch endpoint as the app (not notified back to it). */
    const asApp = async (groupId: string, method: 'post' | 'put', path: string, record: Rec): Promise<Rec> => {
      const res = await fetch(`${h.sandbox.url}/batch`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ sequential: true, ops: [{ method, url: `/api/v2/${groupId}/${path}`, params: { items: record } }] }),
      });
      const [result] = ((await res.json()) as { results: { status: number; body: Record<string, Rec> }[] }).results;
      expect(result?.status).toBeLessThan(300);
      return result?.body.items ?? {};
    };
    /** An item in Connec! that is its own parent, which the app has not been told about. */
    const selfParentedItem = async (groupId: string, name: string): Promise<string> => {
      const id = connecIdOf((await asApp(groupId, 'post', 'items/', { name })).id);
      await asApp(groupId, 'put', `items/${id}`, { parent_item_id: id });
      return id;
    };
    /** The item applied once, then updated once with its own local id as its parent; linked back. */
    const expectResolvedToItself = async (groupId: string, connecId: string) => {
      const map = await mapOf(groupId, 'items', connecId);
      const localId = map?.localId ?? '';
      expect(localId).not.toBe('');
      expect(map?.lastError).toBeNull();
      expect(map?.lastAppliedAt).not.toBeNull();
      expect(app.items.get(localId)).toMatchObject({ id: localId, parentId: localId });
      expect(app.itemWrites.filter((w) => w.id === localId)).toEqual([
        { op: 'create', id: localId, parentId: null },
        { op: 'update', id: localId, parentId: localId },
      ]);
      expect(ours(await h.sandbox.admin.getRecord(groupId, 'items', connecId, { externalIds: true }))).toEqual([{ id: localId, provider: apiId, realm: groupId }]);
      return localId;
    };
    const noDeadLetters = async (groupId: string) => expect((await h.mno.sync.deadLetters({ tenant: TENANT })).filter((d) => d.groupId === groupId)).toEqual([]);

    beforeAll(async () => {
      app = new SelfRefApp();
      h = await startSyncHarness({ storage, connector: selfRefConnector(app), sync: { maxAttempts: 3, parkRetryMs: 20 } });
      const market = h.sandbox.credentials.marketplaces[0];
      apiId = market?.apiId ?? '';
      auth = `Basic ${Buffer.from(`${market?.apiId}:${market?.apiKey}`).toString('base64')}`;
      h.mno.sync.on((e) => events.push(e));
    }, 120_000);
    afterAll(async () => {
      await h?.close();
    });

    it('notified: created, then its reference resolved to its own local id; a record of the same notification referencing it resolves too', async () => {
      const { groupId } = await h.provisionGroup('Self Notified');
      await h.drain();
      const selfId = connecIdOf((await asApp(groupId, 'post', 'items/', { name: 'Root' })).id);
      const parked = events.filter((e) => e.type === 'record.parked').length;
      // Another app makes the item its own parent: its first notification names itself.
      await h.sandbox.admin.updateRecord(groupId, 'items', selfId, { parent_item_id: selfId });
      await h.sandbox.admin.waitForDeliveries(10_000);
      await h.drain();
      const root = await expectResolvedToItself(groupId, selfId);
      await noDeadLetters(groupId);
      expect(events.filter((e) => e.type === 'record.parked').length).toBe(parked);

      // A later version of it: one plain update, its parent still itself.
      await h.sandbox.admin.updateRecord(groupId, 'items', selfId, { name: 'Root 2' });
      await h.sandbox.admin.waitForDeliveries(10_000);
      await h.drain();
      expect(app.items.get(root)).toEqual({ id: root, name: 'Root 2', parentId: root });
      expect(app.itemWrites.filter((w) => w.id === root)).toHaveLength(3);

      // A new item naming a new parent in the same batch: no parking either.
      const parentId = connecIdOf((await asApp(groupId, 'post', 'items/', { name: 'Parent' })).id);
      const childId = connecIdOf((await asApp(groupId, 'post', 'items/', { name: 'Child', parent_item_id: parentId })).id);
      const [parent, child] = await Promise.all([
        h.sandbox.admin.getRecord(groupId, 'items', parentId, { externalIds: true }),
        h.sandbox.admin.getRecord(groupId, 'items', childId, { externalIds: true }),
      ]);
      const url = `${h.appUrl}/maestrano/connec/notifications/${TENANT}`;
      const res = await fetch(url, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ items: [child, parent] }) });
      expect(res.status).toBe(200);
      await h.drain();
      const parentLocal = (await mapOf(groupId, 'items', parentId))?.localId ?? '';
      expect(app.items.get((await mapOf(groupId, 'items', childId))?.localId ?? '')?.parentId).toBe(parentLocal);
      expect(parentLocal).not.toBe('');
      await noDeadLetters(groupId);
    }, 60_000);

    it('fetched on demand for an invoice line that names it: created, resolved to itself, and the invoice applied', async () => {
      const { groupId } = await h.provisionGroup('Self Fetched');
      await h.drain();
      const selfId = await selfParentedItem(groupId, 'Kit');
      const invoice = await h.sandbox.admin.createRecord(groupId, 'invoices', { transaction_number: 'INV-SELF', type: 'CUSTOMER', lines: [{ item_id: selfId, quantity: 1 }] });
      await h.sandbox.admin.waitForDeliveries(10_000);
      await h.drain();
      const kit = await expectResolvedToItself(groupId, selfId);
      const invoiceLocal = (await mapOf(groupId, 'invoices', String(invoice.id)))?.localId ?? '';
      expect(app.invoices.get(invoiceLocal)).toMatchObject({ number: 'INV-SELF', itemIds: [kit] });
      await noDeadLetters(groupId);
    }, 60_000);

    it('the write resolving it fails: retried as an update of the record created once, then resolved', async () => {
      const { groupId } = await h.provisionGroup('Self Retried');
      await h.drain();
      const selfId = connecIdOf((await asApp(groupId, 'post', 'items/', { name: 'Flaky' })).id);
      app.failNextItemUpdate = true;
      await h.sandbox.admin.updateRecord(groupId, 'items', selfId, { parent_item_id: selfId });
      await h.sandbox.admin.waitForDeliveries(10_000);
      await h.drain();
      expect(app.failNextItemUpdate).toBe(false);
      await expectResolvedToItself(groupId, selfId);
      await noDeadLetters(groupId);
    }, 60_000);

    it('imported: created and resolved to itself in the import, nothing handed to the inbox', async () => {
      const { groupId } = await h.provisionGroup('Self Imported');
      await h.drain();
      const selfId = await selfParentedItem(groupId, 'Bundle');
      const report = await h.mno.sync.importGroup({ tenant: TENANT, groupId, full: true });
      expect(report.entities.items).toMatchObject({ fetched: 1, created: 1, deferred: 0, failed: 0 });
      expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0 });
      await expectResolvedToItself(groupId, selfId);
      await noDeadLetters(groupId);
    }, 60_000);
  });
}

for (const storage of backends) {
  describe(`a record referencing itself, notified with plain ids (${storage} storage)`, () => {
    let h: SyncHarness;
    let app: SelfRefApp;
    let apiId: string;
    let auth: string;

    beforeAll(async () => {
      app = new SelfRefApp();
      h = await startSyncHarness({ storage, connector: selfRefConnector(app), externalIds: false, sync: { maxAttempts: 3, parkRetryMs: 20 } });
      const market = h.sandbox.credentials.marketplaces[0];
      apiId = market?.apiId ?? '';
      auth = `Basic ${Buffer.from(`${market?.apiId}:${market?.apiKey}`).toString('base64')}`;
    }, 120_000);
    afterAll(async () => {
      await h?.close();
    });

    it('the write resolving it fails once: the retry resolves it, and the record is still linked back', async () => {
      const { groupId } = await h.provisionGroup('Self Plain');
      await h.drain();
      // Created by the app itself (not notified to it), then made its own parent by another app:
      // its first notification names itself.
      const res = await fetch(`${h.sandbox.url}/batch`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ sequential: true, ops: [{ method: 'post', url: `/api/v2/${groupId}/items/`, params: { items: { name: 'Kit' } } }] }),
      });
      const [created] = ((await res.json()) as { results: { status: number; body: { items: Rec } }[] }).results;
      expect(created?.status).toBeLessThan(300);
      const answeredId = created?.body.items.id;
      const kitId = typeof answeredId === 'string' ? answeredId : ((answeredId as IdEntry[] | undefined)?.find((e) => e.provider === 'connec')?.id ?? '');
      expect(kitId).not.toBe('');
      await h.sandbox.admin.updateRecord(groupId, 'items', kitId, { parent_item_id: kitId });
      app.failNextItemUpdate = true;
      await h.sandbox.admin.waitForDeliveries(10_000);
      await h.drain();
      const map = await h.storage.idMaps.find({ tenant: TENANT, groupId, entity: 'items' }, { connecId: kitId });
      const kit = map?.localId ?? '';
      expect(kit).not.toBe('');
      expect(map?.lastError).toBeNull();
      expect(app.items.get(kit)).toMatchObject({ id: kit, parentId: kit });
      expect(app.itemWrites.filter((w) => w.id === kit)).toEqual([
        { op: 'create', id: kit, parentId: null },
        { op: 'update', id: kit, parentId: kit },
      ]);
      const linked = (await h.sandbox.admin.getRecord(groupId, 'items', kitId, { externalIds: true })).id as IdEntry[];
      expect(linked.filter((e) => e.provider === apiId).map((e) => e.id)).toEqual([kit]);
      expect((await h.mno.sync.deadLetters({ tenant: TENANT })).filter((d) => d.groupId === groupId)).toEqual([]);
    }, 60_000);
  });
}
