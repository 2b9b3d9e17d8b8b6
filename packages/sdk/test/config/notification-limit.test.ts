// The Connec! notification route has its own body limit (`limits.maxNotificationBodyBytes`,
// 16 MiB by default): a notification is a batch of records that Connec! does not send again
// once refused, so a body over the 1 MiB limit of the other routes must still be stored.
// Through `mno.handler` on loopback HTTP, with memory storage.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMaestrano, DEFAULT_MAX_NOTIFICATION_BODY_BYTES, JobTypes, memoryAdapter, type StorageAdapter, staticTenants, toNodeListener } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeConnec } from '../sync/fake-connec.js';
import { API_ID, API_KEY, buildConnector, C, GROUP, LocalApp, ORG_UID, silentLogger, TENANT, testTenant } from '../sync/harness.js';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function start(limits?: { maxBodyBytes?: number; maxNotificationBodyBytes?: number }): Promise<{ base: string; storage: StorageAdapter }> {
  const storage = memoryAdapter();
  const app = new LocalApp();
  const mno = createMaestrano({
    tenants: staticTenants([testTenant()]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger: silentLogger,
    connector: buildConnector(app),
    sync: { connecPort: () => new FakeConnec(ORG_UID) },
    ...(limits ? { limits } : {}),
  });
  const claim = await storage.groups.claim(TENANT, GROUP, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('group already provisioned');
  await storage.groups.complete(TENANT, GROUP, 'test', { companyId: 'co-1', orgUid: ORG_UID });
  server = createServer((req, res) => void toNodeListener(mno.handler)(req, res));
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, storage };
}

const auth = `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}`;

/** `count` people, each with a description long enough to make the body about `bytes`. */
function notification(count: number, bytes: number): string {
  const filler = 'x'.repeat(Math.ceil(bytes / count));
  const people = Array.from({ length: count }, (_, i) => ({
    id: [C(`p${i}`)],
    first_name: 'Jane',
    last_name: `Doe ${i}`,
    description: filler,
    group_id: GROUP,
    channel_id: ORG_UID,
    resource_type: 'people',
    created_at: '2016-10-04T00:36:23Z',
    updated_at: '2016-10-04T00:36:23Z',
  }));
  return JSON.stringify({ people });
}

const post = (base: string, path: string, body: string, method = 'POST') =>
  fetch(`${base}${path}`, { method, headers: { authorization: auth, 'content-type': 'application/json' }, body });

describe('limits.maxNotificationBodyBytes', () => {
  it('defaults to 16 MiB: a 3 MiB notification is stored whole, while other routes keep their 1 MiB limit', async () => {
    expect(DEFAULT_MAX_NOTIFICATION_BODY_BYTES).toBe(16 * 1024 * 1024);
    const { base, storage } = await start();
    const body = notification(300, 3 * 1024 * 1024);
    expect(Buffer.byteLength(body)).toBeGreaterThan(3 * 1024 * 1024);
    const res = await post(base, `/maestrano/connec/notifications/${TENANT}`, body);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ received: 300, stored: 300 });
    expect(await storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 300 });

    // The same size on the group deletion webhook: 413, and the group is untouched.
    const deletion = await post(base, `/maestrano/account/groups/${GROUP}/${TENANT}`, body, 'DELETE');
    expect(deletion.status).toBe(413);
    expect((await storage.groups.get(TENANT, GROUP))?.status).toBe('active');
  });

  it('a notification over the configured limit gets 413 and stores nothing', async () => {
    const { base, storage } = await start({ maxNotificationBodyBytes: 64 * 1024 });
    const res = await post(base, `/maestrano/connec/notifications/${TENANT}`, notification(10, 100 * 1024));
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: 'payload_too_large', message: `Request body exceeds ${64 * 1024} bytes` });
    expect(await storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, running: 0, done: 0, dead: 0 });
  });

  it('is refused when not a positive integer (ConfigError naming it)', () => {
    expect(() =>
      createMaestrano({
        tenants: staticTenants([testTenant()]),
        storage: memoryAdapter(),
        provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
        onLogin: () => new Response('ok'),
        limits: { maxNotificationBodyBytes: 0 },
      }),
    ).toThrow(/limits\.maxNotificationBodyBytes/);
  });
});
