// A first login whose seats lock times out (after addMembership accepted it) records no user,
// as no membership was written: its retry reports userCreated. Through `mno.handler` on
// loopback HTTP with signed assertions from the test IdP.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { toNodeListener } from '../../src/http/node.js';
import { createMaestrano } from '../../src/maestrano.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestIdp, type TestIdp } from '../../src/testing/idp.js';
import { seatsLockKey } from '../../src/webhooks/locks.js';
import { type AccountApiServer, startAccountApiServer } from '../billing/account-api-server.js';
import { provisionGroup } from '../billing/helpers.js';

const TENANT = 'maestrano-test';
let api: AccountApiServer;
let idp: TestIdp;
let server: Server | undefined;
beforeAll(async () => {
  api = await startAccountApiServer();
  idp = createTestIdp();
});
afterAll(async () => {
  await api.close();
});
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

it('a login refused on the seats lock records no user: the retry reports userCreated', async () => {
  const storage = memoryAdapter();
  await provisionGroup(storage, TENANT, 'cld-1');
  let handler: ((request: Request) => Promise<Response>) | undefined;
  server = createServer((req, res) => void toNodeListener((r) => handler!(r))(req, res));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let seq = 0;
  const createUser: string[] = [];
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: appUrl, apiId: api.apiId, apiKey: api.apiKey, idpHost: api.url })],
    storage,
    provisioning: {
      createCompany: () => ({ id: `company-${++seq}` }),
      createUser: (u) => {
        createUser.push(u.uid);
        return { id: `user-${++seq}` };
      },
      onSeatsChanged: () => {},
    },
    onLogin: ({ outcome }) => Response.json(outcome),
    sso: { allowIdpInitiated: true, provisioningClaimTtlMs: 1_000 },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;
  const acsUrl = `${appUrl}/maestrano/auth/saml/consume/${TENANT}`;
  const login = async () => {
    const res = await fetch(acsUrl, {
      method: 'POST',
      body: new URLSearchParams({ SAMLResponse: idp.response({ uid: 'usr-1', email: 'usr-1@example.com', groupUid: 'cld-1' }, { acsUrl, inResponseTo: null }) }),
      redirect: 'manual',
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
  };
  // Another seat change of the group (a member removal's recount) holds the seats lock.
  expect(await storage.locks.acquire(seatsLockKey(TENANT, 'cld-1'), 'other-seat-change', 60_000)).toBe(true);
  const first = await login();
  expect(first.status).toBe(503);
  // Nothing was written for the membership ...
  expect(await storage.users.listMemberships(TENANT, { uid: 'usr-1' })).toEqual([]);
  // ... so the user is not recorded either.
  expect(await storage.users.get(TENANT, 'usr-1')).toBeNull();
  await storage.locks.release(seatsLockKey(TENANT, 'cld-1'), 'other-seat-change');
  const retry = await login();
  expect(retry.status).toBe(200);
  expect(retry.body?.userCreated).toBe(true);
}, 20_000);
