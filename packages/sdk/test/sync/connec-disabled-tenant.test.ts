/**
 * A marketplace whose Connec! is switched off (`connec.enabled: false`, PROTOCOL §1's "Connec!
 * switch"): its groups are never synchronized and its Connec! is never called (the SDK does not
 * check `connec.host` for such a marketplace, so it may be the production default). A Connec!
 * on loopback counts the requests; the same set-up with the switch on reaches it, so the test
 * can fail. Everything goes through `createMaestrano`: the company's set-up job and the worker,
 * the platform's control routes, the notification route, `mno.sync` and `mno.connec`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, createMaestrano, JobTypes, memoryAdapter, staticTenants, SyncDisabledError } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { API_ID, API_KEY, buildConnector, drainer, GROUP, LocalApp, provisionGroup, silentLogger, TENANT, testTenant } from './harness.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** A Connec! with no records: lists answer empty pages; every request is recorded. */
async function emptyConnec(): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      const collection = new URL(req.url ?? '/', 'http://x').pathname.split('/').pop() ?? '';
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ [collection]: [], pagination: { total: 0 } }));
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

async function setup(connecEnabled: boolean) {
  const connec = await emptyConnec();
  const storage = memoryAdapter();
  const base = testTenant();
  const app = new LocalApp();
  const mno = createMaestrano({
    tenants: staticTenants([{ ...base, connec: { ...base.connec, enabled: connecEnabled, host: connec.url } }]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger: silentLogger,
    connector: buildConnector(app),
  });
  await provisionGroup(storage);
  // What a first login queues once the company exists (the set-up fans out to the import).
  await storage.jobs.enqueue({
    type: JobTypes.companyCreated,
    tenant: TENANT,
    groupId: GROUP,
    dedupeKey: `company.created:${TENANT}:${GROUP}`,
    payload: { tenant: TENANT, groupId: GROUP, companyId: 'company' },
  });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await mno.handler(
      new Request(`http://127.0.0.1/maestrano${path}`, {
        method,
        headers: { authorization: `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}`, 'content-type': 'application/json' },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      }),
    );
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  return { connec, storage, app, mno, call, drain: drainer(mno.worker, storage) };
}

const contact = { id: 'per-1', firstName: 'Ada', lastName: 'Lovelace', jobTitle: null, email: null, companyId: null, updatedAt: new Date(0) };

describe('a marketplace with connec.enabled: false', () => {
  it('with the switch on (the control case): the company set-up imports from its Connec!', async () => {
    const s = await setup(true);
    await s.drain();
    expect(s.connec.requests.some((r) => r.startsWith(`GET /api/v2/${GROUP}/`))).toBe(true);
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ done: 1, pending: 0 });
  });

  it('never calls its Connec!: the import waits, pushes are skipped, the status says why, importGroup and mno.connec refuse', async () => {
    const s = await setup(false);
    await s.drain(20);
    // The company's import is queued and waits (as for a group whose sync is off): it would run
    // if the marketplace's Connec! were switched on later. Nothing is imported, nothing failed.
    expect(await s.storage.jobs.counts({ type: JobTypes.companyCreated })).toMatchObject({ done: 1 });
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ pending: 1, done: 0, dead: 0 });
    expect(await s.storage.cursors.list(TENANT, GROUP)).toEqual([]);

    const pushed = await s.mno.sync.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: contact });
    expect(pushed).toMatchObject({ localId: 'per-1', status: 'skipped', connecId: null, error: expect.stringContaining('connec.enabled: false') });
    expect(await s.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { localId: 'per-1' })).toBeNull();

    const imported = await s.mno.sync.importGroup({ tenant: TENANT, groupId: GROUP }).catch((e: unknown) => e);
    expect(imported).toBeInstanceOf(SyncDisabledError);
    expect((imported as Error).message).toContain(`Connec! is disabled for marketplace "${TENANT}"`);
    expect(() => s.mno.connec(TENANT, GROUP)).toThrow(ConfigError);

    // The platform's start enqueues nothing and the status says why.
    const started = await s.call('POST', `/${TENANT}/synchronizations`, { group_id: GROUP });
    expect(started).toMatchObject({ status: 201, json: { group_id: GROUP, status: 'DISABLED', message: expect.stringContaining('connec.enabled: false') } });
    expect(await s.storage.jobs.counts({ type: JobTypes.syncPoll })).toMatchObject({ pending: 0, done: 0 });
    expect(await s.call('GET', `/${TENANT}/synchronizations/${GROUP}`)).toMatchObject({ status: 200, json: { status: 'DISABLED' } });

    // A notification is received (2xx, as Connec! expects) and applies nothing.
    const notified = await s.call('POST', `/connec/notifications/${TENANT}`, {
      people: [{ id: [{ id: 'p1', provider: 'connec', realm: 'org-f6zi' }], group_id: GROUP, first_name: 'Grace', last_name: 'Hopper', updated_at: '2024-01-01T00:00:00Z' }],
    });
    expect(notified.status).toBe(200);
    await s.drain(20);
    expect([...s.app.contacts.values()]).toEqual([]);

    expect(s.connec.requests).toEqual([]);
  });
});
