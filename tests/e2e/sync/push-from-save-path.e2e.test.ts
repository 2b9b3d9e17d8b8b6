/**
 * An app that pushes from its one save path, which `local.create`/`local.update` also go
 * through (an ORM hook, a shared `saveContact`), against the sandbox as Connec!: the versions
 * the SDK writes from Connec! are not pushed back, so a Connec! change settles with no push, and
 * a record created from Connec! is not created a second time there. The echo of a push that
 * leaves out the fields the push set to null is still recognised.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { createMaestrano, createWorker, defineConnector, defineEntity, type Maestrano, memoryAdapter, tenantsFromDevPlatform, toNodeListener } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';

const TENANT = 'save-path';
const silent = { debug() {}, info() {}, warn() {}, error() {} };

interface Contact {
  id?: string;
  firstName: string;
  lastName: string;
  jobTitle: string | null;
  updatedAt?: Date;
}

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function start() {
  let handler: ((request: Request) => Promise<Response>) | undefined;
  const server: Server = createServer((req, res) => void toNodeListener(handler as (r: Request) => Promise<Response>)(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sandbox: Sandbox = await startSandbox({ port: 0, appUrl, marketplaces: [TENANT], retryBaseMs: 50, maxDeliveryAttempts: 8, notifyDelayMs: 10 });
  close = async () => {
    await sandbox.stop();
    await new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  };
  const tenants = await tenantsFromDevPlatform({ host: sandbox.url, key: sandbox.credentials.environment.apiKey, secret: sandbox.credentials.environment.apiSecret, refreshMs: 0 });
  const group = await sandbox.admin.createGroup({ marketplace: TENANT, name: 'Save Co' });
  const storage = memoryAdapter();
  const claim = await storage.groups.claim(TENANT, group.id, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('claim failed');
  await storage.groups.complete(TENANT, group.id, 'test', { companyId: 'co-1', orgUid: group.orgUid });

  const rows = new Map<string, Contact>();
  const pushes: string[] = [];
  let mno: Maestrano | undefined;
  let seq = 0;
  // The app's one save path: write the row, then share it with Connec! (docs: push after saving).
  const save = async (row: Contact & { id: string }) => {
    rows.set(row.id, { ...row, updatedAt: new Date() });
    const result = await mno!.sync.push({ tenant: TENANT, groupId: group.id, entity: 'contacts', record: rows.get(row.id) });
    pushes.push(result.status);
  };
  const keys = new Map<string, string>();
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    toLocal: (p): Contact => ({ firstName: p.first_name ?? '', lastName: p.last_name ?? '', jobTitle: p.job_title ?? null }),
    // A cleared title goes out as null: a push merges, a field left out keeps its old value.
    toConnec: (c: Contact) => ({ first_name: c.firstName, last_name: c.lastName, job_title: c.jobTitle }),
    localId: (c: Contact) => c.id ?? '',
    localUpdatedAt: (c: Contact) => c.updatedAt ?? null,
    local: {
      create: async (data, ctx) => {
        const id = keys.get(ctx.idempotencyKey) ?? `ct-${++seq}`;
        keys.set(ctx.idempotencyKey, id);
        await save({ ...data, id });
        return { id };
      },
      update: async (id, data) => {
        if (!rows.has(id)) return { gone: true };
        await save({ ...data, id });
        return undefined;
      },
      get: async (id) => rows.get(id) ?? null,
    },
  });
  mno = createMaestrano({
    tenants,
    storage,
    provisioning: { createCompany: () => ({ id: 'co-1' }), createUser: () => ({ id: 'u-1' }) },
    onLogin: () => new Response('ok'),
    connector: defineConnector({ entities: [contacts] }),
    logger: silent,
  });
  handler = mno.handler;
  const deliver = async () => {
    await sandbox.admin.waitForDeliveries();
    const worker = createWorker(mno!.runtime, mno!.jobs);
    for (let i = 0; i < 60; i++) {
      await worker.drain({ pollIntervalMs: 5, concurrency: 2, backoff: { baseMs: 10, maxMs: 50 } });
      const counts = await storage.jobs.counts();
      if (counts.pending === 0 && counts.running === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const notify = (body: unknown) =>
    mno!.handler(
      new Request(`${appUrl}/maestrano/connec/notifications/${TENANT}`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${sandbox.credentials.marketplaces[0]?.apiId ?? ''}:${sandbox.credentials.marketplaces[0]?.apiKey ?? ''}`).toString('base64')}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    );
  return { sandbox, mno, storage, group, rows, pushes, save, deliver, notify };
}

describe('an app pushing from the save path the SDK writes through', () => {
  it('a record another app creates in Connec! stays one record, and an edit of it is not pushed back', async () => {
    const h = await start();
    const created = await h.sandbox.admin.createRecord(h.group.id, 'people', { first_name: 'Zoë', last_name: 'Ångström 👩‍🔬', job_title: null });
    await h.deliver();
    expect([...h.rows.values()].map((r) => r.lastName)).toEqual(['Ångström 👩‍🔬']);
    expect(await h.sandbox.admin.listRecords(h.group.id, 'people')).toHaveLength(1);
    expect(h.mno.sync.counters()).toMatchObject({ created: 1, deadLettered: 0 });

    const before = (await h.sandbox.admin.getRecord(h.group.id, 'people', created.id)).updated_at;
    await h.sandbox.admin.updateRecord(h.group.id, 'people', created.id, { job_title: 'CTO' });
    await h.deliver();
    expect([...h.rows.values()].map((r) => r.jobTitle)).toEqual(['CTO']);
    const after = await h.sandbox.admin.getRecord(h.group.id, 'people', created.id);
    // Only the other app's edit moved it: the app sent nothing back.
    expect(after.updated_at).not.toBe(before);
    await h.deliver();
    expect((await h.sandbox.admin.getRecord(h.group.id, 'people', created.id)).updated_at).toBe(after.updated_at);
    expect(h.pushes.every((s) => s === 'unchanged')).toBe(true);
    expect(h.mno.sync.counters()).toMatchObject({ updated: 1, pushed: 0, deadLettered: 0 });
  });

  it('the echo of a push that leaves out the fields the push set to null is not written in the app', async () => {
    const h = await start();
    await h.save({ id: 'ct-local', firstName: 'Ann', lastName: 'Lee', jobTitle: null });
    expect(h.pushes).toEqual(['pushed']);
    const [stored] = await h.sandbox.admin.listRecords(h.group.id, 'people', { externalIds: true });
    expect(stored?.job_title).toBeNull();
    // Connec! echoes the push: unset attributes left out, keys in another order, a later stamp.
    const { job_title: _unset, ...rest } = stored ?? {};
    const echo = Object.fromEntries(Object.entries({ ...rest, updated_at: new Date(Date.now() + 60_000).toISOString() }).reverse());
    const res = await h.notify({ people: [echo] });
    expect(res.status).toBeLessThan(300);
    const savedAt = h.rows.get('ct-local')?.updatedAt;
    await h.deliver();
    expect(h.rows.get('ct-local')?.updatedAt).toBe(savedAt);
    expect(h.mno.sync.counters()).toMatchObject({ skippedEcho: 1, updated: 0 });
  });
});
