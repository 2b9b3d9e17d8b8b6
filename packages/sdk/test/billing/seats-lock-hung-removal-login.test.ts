// A member removal whose onSeatsChanged never settles gives the group's seats lock and the
// user's lock up after three lock leases: an SSO login adding a member to that group (through
// `mno.handler` on loopback HTTP, signed by the test IdP) and a login of the removed user go on
// once the removal answered 500, and the removal's retry then completes with the real count.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { toNodeListener } from '../../src/http/node.js';
import { createMaestrano } from '../../src/maestrano.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestIdp, type TestIdp } from '../../src/testing/idp.js';
import { createAccountWebhooks } from '../../src/webhooks/account.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, makeRuntime, makeTenant, provisionGroup, provisionUser, settleOnFakeTime } from './helpers.js';

const TENANT = 'maestrano-uat';
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
  vi.useRealTimers();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

it('after a hung removal is given up, a login adding a member and the removal retry both complete', async () => {
  const storage = memoryAdapter();
  await provisionGroup(storage, TENANT, 'cld-1');
  for (const uid of ['usr-1', 'usr-2']) await provisionUser(storage, TENANT, uid, ['cld-1']);
  let handler: ((request: Request) => Promise<Response>) | undefined;
  server = createServer((req, res) => void toNodeListener((r) => handler!(r))(req, res));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const acsUrl = `${appUrl}/maestrano/auth/saml/consume/${TENANT}`;
  const login = async (uid: string) => {
    const res = await fetch(acsUrl, {
      method: 'POST',
      body: new URLSearchParams({ SAMLResponse: idp.response({ uid, email: `${uid}@example.com`, groupUid: 'cld-1' }, { acsUrl, inResponseTo: null }) }),
      redirect: 'manual',
    });
    await res.arrayBuffer();
    return res.status;
  };
  const reports: { added: string[]; removed: string[]; activeSeats: number }[] = [];
  let hang = true;
  let reached!: () => void;
  const reporting = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const onSeatsChanged = (_c: unknown, change: { added: string[]; removed: string[]; activeSeats: number }) => {
    reports.push({ added: change.added, removed: change.removed, activeSeats: change.activeSeats });
    if (hang && change.removed[0] === 'usr-1') {
      reached();
      return new Promise<void>(() => {});
    }
  };
  let seq = 0;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: appUrl, apiId: api.apiId, apiKey: api.apiKey, idpHost: api.url })],
    storage,
    provisioning: { createCompany: () => ({ id: `company-${++seq}` }), createUser: () => ({ id: `user-${++seq}` }), onSeatsChanged },
    onLogin: () => new Response('ok'),
    sso: { allowIdpInitiated: true },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;
  const tenant = makeTenant(api);
  const { runtime, logger } = makeRuntime(storage, [tenant]);
  const webhooks = createAccountWebhooks({
    storage,
    logger,
    hooks: { onSeatsChanged },
    account: () => {
      throw new Error('no account API call expected');
    },
    cancelRecurringBills: false,
    instanceId: runtime.instanceId,
    lockTtlMs: 300,
    lockWaitMs: 100,
  });
  const remove = () => {
    const headers = new Headers({ authorization: basicAuth(tenant.api.id, tenant.api.key) });
    const request = new Request(`http://127.0.0.1/maestrano/account/groups/cld-1/users/usr-1/${tenant.name}`, { method: 'DELETE', headers });
    return webhooks.groupUserDeleted({ request, tenant, params: { group_id: 'cld-1', id: 'usr-1' } });
  };
  const first = remove();
  await reporting;
  expect((await first).status).toBe(500);
  // Both locks are free: a login adding usr-3 and a login of usr-1 itself go through.
  expect(await login('usr-3')).toBe(200);
  expect(await login('usr-1')).toBe(200);
  hang = false;
  // On fake time (Date and performance included): with a 300 ms lease, the retry reads its seats
  // lock as lost 225 ms after the last confirmed renewal, which a stall that long on a loaded
  // machine made it do (503). No HTTP from here on.
  vi.useFakeTimers();
  const retried = await settleOnFakeTime(remove());
  vi.useRealTimers();
  expect(retried.status).toBe(200);
  const active = (await storage.users.listMemberships(TENANT, { groupId: 'cld-1' })).filter((m) => m.status === 'active').map((m) => m.uid).sort();
  expect(active).toEqual(['usr-2', 'usr-3']);
  expect(reports.at(-1)).toEqual({ added: [], removed: ['usr-1'], activeSeats: 2 });
}, 20_000);
