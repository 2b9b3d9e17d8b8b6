// The control endpoints refuse a group_id storage cannot hold (an unpaired UTF-16 surrogate, a
// NUL) with 400, like other bad group ids, before any lookup: on PostgreSQL a lookup by
// 'cld-\uD800' finds the group stored as 'cld-\uFFFD' (the surrogate is read as U+FFFD), so the
// request would act on another group. The storage here answers lookups as PostgreSQL does.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createMaestrano,
  memoryAdapter,
  type StorageAdapter,
  staticTenants,
  toNodeListener,
  wellFormedText,
} from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeConnec } from './fake-connec.js';
import { API_ID, API_KEY, buildConnector, LocalApp, ORG_UID, silentLogger, TENANT, testTenant } from './harness.js';

let handler: (request: Request) => Promise<Response> = async () => new Response(null, { status: 503 });
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => void toNodeListener((request) => handler(request))(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** A memory store whose group lookups read an unpaired surrogate or a NUL as U+FFFD, as PostgreSQL would. */
function postgresLikeGroups(storage: StorageAdapter): StorageAdapter {
  const groups = storage.groups;
  return {
    ...storage,
    groups: {
      ...groups,
      get: (tenant, groupId) => groups.get(wellFormedText(tenant), wellFormedText(groupId)),
      update: (tenant, groupId, patch) => groups.update(wellFormedText(tenant), wellFormedText(groupId), patch),
    },
  };
}

const basic = `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}`;
const SYNC = `/maestrano/${TENANT}/synchronizations`;

async function call(method: string, path: string, body: Record<string, unknown>): Promise<{ status: number; json: unknown }> {
  // JSON.stringify writes an unpaired surrogate as a \u escape, which JSON.parse reads back as is.
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: basic, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

describe('control endpoints: a group_id storage cannot hold', () => {
  it('answers 400 for a group_id holding an unpaired surrogate, and never acts on the group stored as its U+FFFD twin', async () => {
    const storage = postgresLikeGroups(memoryAdapter());
    const twin = 'cld-\uFFFD';
    expect((await storage.groups.claim(TENANT, twin, { owner: 'test', ttlMs: 60_000 })).state).toBe('claimed');
    await storage.groups.complete(TENANT, twin, 'test', { companyId: 'co-1', orgUid: ORG_UID });
    const mno = createMaestrano({
      tenants: staticTenants([testTenant()]),
      storage,
      provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
      onLogin: () => new Response('ok'),
      logger: silentLogger,
      connector: buildConnector(new LocalApp()),
      sync: { connecPort: () => new FakeConnec(ORG_UID), parkRetryMs: 5, maxAttempts: 4 },
    });
    handler = mno.handler;
    const before = await storage.groups.get(TENANT, twin);
    const message = 'group_id contains an unpaired UTF-16 surrogate';
    for (const groupId of ['cld-\uD800', 'cld-\uDC00', '\uDBFFcld']) {
      const refused = { status: 400, json: { errors: [{ message, code: 400 }] } };
      expect(await call('POST', SYNC, { group_id: groupId })).toEqual(refused);
      expect(await call('PUT', `${SYNC}/toggle_sync`, { group_id: groupId, opts: { sync_enabled: true } })).toEqual(refused);
      expect(await call('PUT', `${SYNC}/update_metadata`, { group_id: groupId, metadata: {} })).toEqual(refused);
    }
    // A NUL is a control character, refused as such.
    expect(await call('POST', SYNC, { group_id: 'cld-\u0000' })).toEqual({
      status: 400,
      json: { errors: [{ message: 'group_id contains control characters', code: 400 }] },
    });
    expect(await storage.groups.get(TENANT, twin)).toEqual(before);
    expect(await storage.jobs.counts()).toEqual({ pending: 0, running: 0, done: 0, dead: 0 });
    // The twin itself is an ordinary id.
    expect((await call('PUT', `${SYNC}/update_metadata`, { group_id: twin, metadata: {} })).status).toBe(200);
  });
});
