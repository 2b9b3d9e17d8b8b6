/**
 * Day one: a connector written from the guides alone (docs/connectors-and-mappers.md, the SDK's
 * connector guide, docs/testing-with-the-sandbox.md), against the sandbox. Connec! invoices
 * with lines naming items and a customer organization, in a small in-memory store, both ways:
 * the initial import, notifications, a push of an edited line (Connec! keeps the line, its
 * echo adds none) and dead letters.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import {
  createMaestrano,
  defineConnector,
  defineEntity,
  type Maestrano,
  memoryAdapter,
  parseMarketplacesDocument,
  staticTenants,
  type SyncReport,
  toNodeListener,
} from '@org/maestrano-sdk';
import { afterAll, beforeAll, expect, it } from 'vitest';

interface Scope { tenant: string; groupId: string }
interface Customer { id?: string; name: string; updatedAt?: Date }
interface Item { id?: string; code: string; name: string; updatedAt?: Date }
interface Line { id: string | null; itemId: string | null; description: string; quantity: number }
interface Invoice { id?: string; number: string; customerId: string | null; lines: Line[]; updatedAt?: Date }

class Store {
  customers = new Map<string, Customer & Scope>();
  items = new Map<string, Item & Scope>();
  invoices = new Map<string, Invoice & Scope>();
  keys = new Map<string, string>();
  private seq = 0;
  nextId(prefix: string): string {
    return `${prefix}_${++this.seq}`;
  }
}

/** A record the app refuses to store (its `local.create` throws). */
const REFUSED = 'INV-REFUSED';
/** A record the mapper drops by mistake (returns undefined; JavaScript or a cast). */
const UNMAPPED = 'INV-UNMAPPED';

function connector(store: Store) {
  const customers = defineEntity<'organizations', Customer>({
    name: 'customers',
    connec: 'organizations',
    direction: 'inbound',
    toLocal: (org) => ({ name: org.name ?? '' }),
    local: {
      create: async (data, ctx) => {
        const id = store.keys.get(ctx.idempotencyKey) ?? store.nextId('cu');
        store.keys.set(ctx.idempotencyKey, id);
        store.customers.set(id, { ...data, id, tenant: ctx.tenant, groupId: ctx.groupId });
        return { id };
      },
      update: async (id, data, ctx) => {
        const row = store.customers.get(id);
        if (!row || row.groupId !== ctx.groupId) return { gone: true };
        store.customers.set(id, { ...row, ...data, id });
        return undefined;
      },
    },
  });

  const items = defineEntity<'items', Item>({
    name: 'items',
    connec: 'items',
    direction: 'inbound',
    toLocal: (item) => ({ code: item.code ?? '', name: item.name ?? '' }),
    local: {
      create: async (data, ctx) => {
        const id = store.keys.get(ctx.idempotencyKey) ?? store.nextId('it');
        store.keys.set(ctx.idempotencyKey, id);
        store.items.set(id, { ...data, id, tenant: ctx.tenant, groupId: ctx.groupId });
        return { id };
      },
      update: async (id, data, ctx) => {
        const row = store.items.get(id);
        if (!row || row.groupId !== ctx.groupId) return { gone: true };
        store.items.set(id, { ...row, ...data, id });
        return undefined;
      },
    },
  });

  const invoices = defineEntity<'invoices', Invoice>({
    name: 'invoices',
    connec: 'invoices',
    direction: 'both',
    references: { organization_id: 'customers', 'lines/item_id': 'items' },
    subRecords: ['lines'],
    matchingFields: ['transaction_number'],
    conflict: { strategy: 'newest-wins', skewMs: 1_000, tieBreaker: 'local' },
    toLocal: (inv) => {
      if (inv.transaction_number === UNMAPPED) return undefined as unknown as Invoice;
      return {
        number: inv.transaction_number ?? '',
        customerId: typeof inv.organization_id === 'string' ? inv.organization_id : null,
        // Sub-records: each line's `id` is ours (a string) or null for a new line.
        lines: (inv.lines ?? []).map((l) => ({
          id: typeof l.id === 'string' ? l.id : null,
          itemId: typeof l.item_id === 'string' ? l.item_id : null,
          description: l.description ?? '',
          quantity: l.quantity ?? 0,
        })),
      };
    },
    toConnec: (inv) => ({
      transaction_number: inv.number,
      type: 'CUSTOMER',
      organization_id: inv.customerId,
      lines: inv.lines.map((l) => ({
        ...(l.id ? { id: l.id } : {}),
        item_id: l.itemId,
        description: l.description,
        quantity: l.quantity,
      })),
    }),
    localId: (inv) => inv.id ?? '',
    localUpdatedAt: (inv) => inv.updatedAt ?? null,
    local: {
      create: async (data, ctx) => {
        if (data.number === REFUSED) throw new Error(`refused ${data.number}`);
        const id = store.keys.get(ctx.idempotencyKey) ?? store.nextId('inv');
        store.keys.set(ctx.idempotencyKey, id);
        const lines = data.lines.map((l) => ({ ...l, id: store.nextId('ln') }));
        store.invoices.set(id, { ...data, lines, id, tenant: ctx.tenant, groupId: ctx.groupId, updatedAt: new Date() });
        return { id, subIds: { lines: lines.map((l) => l.id) } };
      },
      update: async (id, data, ctx) => {
        const row = store.invoices.get(id);
        if (!row || row.groupId !== ctx.groupId) return { gone: true };
        const lines = data.lines.map((l) => ({ ...l, id: l.id ?? store.nextId('ln') }));
        store.invoices.set(id, { ...row, ...data, lines, id, updatedAt: new Date() });
        return { subIds: { lines: lines.map((l) => l.id) } };
      },
      get: async (id, ctx) => {
        const row = store.invoices.get(id);
        return row && row.groupId === ctx.groupId ? row : null;
      },
    },
  });

  return defineConnector({ entities: [invoices, items, customers] });
}

let sandbox: Sandbox;
let server: Server;
let mno: ReturnType<typeof createApp>;
const store = new Store();
const imports: SyncReport[] = [];
const TENANT = 'sandbox';

function createApp(doc: unknown, local: Store) {
  return createMaestrano({
    tenants: staticTenants(parseMarketplacesDocument(doc, 'sandbox')),
    storage: memoryAdapter(),
    provisioning: { createCompany: (g) => ({ id: `co-${g.uid}` }), createUser: (u) => ({ id: `us-${u.key}` }) },
    onLogin: () => new Response(null, { status: 303, headers: { location: '/' } }),
    connector: connector(local),
    sync: { maxAttempts: 1, parkRetryMs: 10, onEvent: (event) => void (event.type === 'import.completed' && imports.push(event.report)) },
  });
}

beforeAll(async () => {
  let handler: Maestrano['handler'] | undefined;
  server = createServer((req, res) => {
    if (!handler) {
      res.statusCode = 503;
      res.end();
      return;
    }
    void toNodeListener(handler)(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sandbox = await startSandbox({ port: 0, appUrl, notifyDelayMs: 5 });
  const { apiKey, apiSecret } = sandbox.credentials.environment;
  const doc = await (
    await fetch(sandbox.marketplacesUrl, { headers: { authorization: `Basic ${Buffer.from(`${apiKey}:${apiSecret}`).toString('base64')}` } })
  ).json();
  mno = createApp(doc, store);
  handler = mno.handler;
});

afterAll(async () => {
  await mno?.runtime.storage.close();
  await sandbox?.stop();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

async function drain(): Promise<void> {
  await sandbox.admin.waitForDeliveries();
  await mno.worker.drain();
}

it('imports, applies notifications, pushes a local edit and lists a dead letter', async () => {
  const { admin } = sandbox;
  const group = await admin.createGroup({ name: 'Day One Ltd' });
  const org = await admin.createRecord(group.id, 'organizations', { name: 'Acme' });
  const item = await admin.createRecord(group.id, 'items', { code: 'W1', name: 'Widget' });
  await admin.createRecord(group.id, 'invoices', {
    transaction_number: 'INV-1',
    type: 'CUSTOMER',
    organization_id: org.id,
    lines: [{ item_id: item.id, description: 'Widgets', quantity: 2 }],
  });
  // Their notifications name a group the app does not know yet: skipped, so the import is what
  // brings these records in.
  await drain();
  const user = await admin.createUser({ name: 'Ada', surname: 'Admin', email: 'ada@example.com', memberships: [{ groupId: group.id, role: 'Admin' }] });

  const init = await fetch(`${new URL(mno.sso.initUrl(TENANT, { groupId: group.id }))}`, { redirect: 'manual' });
  const cookie = init.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const sso = await admin.ssoLogin({ authnRequestUrl: init.headers.get('location') ?? '', userId: user.id, groupId: group.id });
  const consume = await fetch(sso.acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: sso.samlResponse, RelayState: sso.relayState ?? '' }), headers: { cookie }, redirect: 'manual' });
  expect(consume.status).toBe(303);
  await drain();
  // Initial import: the customer, the item and the invoice, its references as our ids.
  const customer = [...store.customers.values()].find((c) => c.groupId === group.id);
  const widget = [...store.items.values()].find((i) => i.groupId === group.id);
  const imported = [...store.invoices.values()].find((i) => i.number === 'INV-1');
  expect(imports.map((r) => [r.groupId, r.status, r.entities.invoices?.created, r.entities.customers?.created])).toEqual([[group.id, 'complete', 1, 1]]);
  expect(customer?.name).toBe('Acme');
  expect(imported).toMatchObject({ customerId: customer?.id, lines: [{ itemId: widget?.id, description: 'Widgets', quantity: 2 }] });

  // A notification creates an invoice, then another updates it.
  const created = await admin.createRecord(group.id, 'invoices', {
    transaction_number: 'INV-2',
    type: 'CUSTOMER',
    organization_id: org.id,
    lines: [{ item_id: item.id, description: 'One widget', quantity: 1 }],
  });
  await drain();
  const second = [...store.invoices.values()].find((i) => i.number === 'INV-2');
  expect(second?.lines).toMatchObject([{ itemId: widget?.id, quantity: 1 }]);
  const plain = await admin.getRecord(group.id, 'invoices', String(created.id));
  await admin.updateRecord(group.id, 'invoices', String(created.id), { transaction_number: 'INV-2b', lines: plain.lines ?? [] });
  await drain();
  expect(store.invoices.get(second?.id ?? '')).toMatchObject({ number: 'INV-2b', lines: [{ id: second?.lines[0]?.id, quantity: 1 }] });
  expect([...store.invoices.values()].filter((i) => i.groupId === group.id)).toHaveLength(2);

  // A local edit is pushed: Connec! gets the new quantity, on the same line.
  const edited = store.invoices.get(second?.id ?? '');
  if (!edited) throw new Error('no invoice');
  const changed = { ...edited, lines: edited.lines.map((l) => ({ ...l, quantity: 5 })), updatedAt: new Date() };
  store.invoices.set(changed.id ?? '', changed);
  const pushed = await mno.sync.push({ tenant: TENANT, groupId: group.id, entity: 'invoices', record: changed });
  expect(pushed).toMatchObject({ status: 'pushed', connecId: String(created.id) });
  const remote = await admin.getRecord(group.id, 'invoices', String(created.id));
  expect(remote.lines).toHaveLength(1);
  expect((remote.lines as { quantity?: number }[])[0]?.quantity).toBe(5);
  await drain();
  expect(store.invoices.get(changed.id ?? '')?.lines).toMatchObject([{ id: changed.lines[0]?.id, quantity: 5 }]);

  // A record the app refuses (maxAttempts: 1) ends as a dead letter, and so does one whose
  // mapper returned nothing, with an error naming the mapper rather than local.create's crash.
  const refused = await admin.createRecord(group.id, 'invoices', { transaction_number: REFUSED, type: 'CUSTOMER', lines: [] });
  const unmapped = await admin.createRecord(group.id, 'invoices', { transaction_number: UNMAPPED, type: 'CUSTOMER', lines: [] });
  await drain();
  const dead = await mno.sync.deadLetters({ tenant: TENANT });
  expect(dead.map((d) => [d.entity, d.connecId, d.error?.message]).sort()).toEqual(
    [
      ['invoices', String(refused.id), `refused ${REFUSED}`],
      ['invoices', String(unmapped.id), 'toLocal of entity "invoices" returned undefined: it must return the local record (leave records out with filter)'],
    ].sort(),
  );
  expect([...store.invoices.values()].map((i) => i.number).sort()).toEqual(['INV-1', 'INV-2b']);
});
