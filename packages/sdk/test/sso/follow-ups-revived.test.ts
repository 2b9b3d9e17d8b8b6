// A first login that stored `company.created` but never completed its group (the process died,
// or the storage failed, just before `groups.complete`) leaves the company's follow-up jobs
// waiting for the group. Each wait counts as an attempt (10 minutes apart), so a user coming
// back more than about 80 minutes later found the subscription job dead: the login completed
// the group and the company was never subscribed. Completing the group now queues such jobs
// again. Through `mno.handler` on loopback HTTP, RSA-signed assertions, a test clock.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { JobTypes } from '../../src/core/types.js';
import { toNodeListener } from '../../src/http/node.js';
import { createMaestrano } from '../../src/maestrano.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock } from '../../src/testing/conformance/clock.js';
import { createTestIdp, type TestIdp } from '../../src/testing/idp.js';
import { type AccountApiServer, startAccountApiServer } from '../billing/account-api-server.js';
import { resetServer } from '../billing/helpers.js';

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

it('a user back hours after a first login that never completed: the dead subscription job runs, one live bill', async () => {
  resetServer(api);
  api.addGroup('cld-9');
  const clock = createTestClock(Date.now());
  const memory = memoryAdapter({ clock: clock.now });
  let failComplete = true;
  const storage: StorageAdapter = {
    ...memory,
    groups: {
      ...memory.groups,
      // The first login dies right before completing the group (as a SIGKILL would leave it).
      complete: (...args) => (failComplete ? Promise.reject(new Error('connection lost')) : memory.groups.complete(...args)),
    },
  };
  let handler: ((r: Request) => Promise<Response>) | undefined;
  server = createServer((req, res) => void toNodeListener((r) => handler!(r))(req, res));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: appUrl, apiId: api.apiId, apiKey: api.apiKey, idpHost: api.url })],
    storage,
    clock: clock.now,
    provisioning: {
      createCompany: (g) => ({ id: `company-${g.uid}` }),
      createUser: () => ({ id: 'user-1' }),
    },
    billing: { onCompanyCreated: () => ({ priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month' }) },
    onLogin: ({ company }) => Response.json({ companyId: company.id }),
    sso: { allowIdpInitiated: true },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;
  const acsUrl = `${appUrl}/maestrano/auth/saml/consume/${TENANT}`;
  const login = () =>
    fetch(acsUrl, {
      method: 'POST',
      body: new URLSearchParams({ SAMLResponse: idp.response({ uid: 'usr-1', email: 'usr-1@example.com', groupUid: 'cld-9' }, { acsUrl, inResponseTo: null, now: clock.now() }) }),
      redirect: 'manual',
    });

  expect((await login()).status).toBeGreaterThanOrEqual(500);
  expect(await storage.groups.get(TENANT, 'cld-9')).toBeNull();
  // The stored company.created fans out; the subscription waits for the group, 10 minutes a
  // time, until its attempts are spent.
  for (let i = 0; i < 12; i++) {
    await mno.worker.drain();
    clock.advance(11 * 60_000);
  }
  expect(await storage.jobs.counts({ type: JobTypes.billingSubscribe })).toMatchObject({ dead: 1, pending: 0 });
  expect(api.recurringBills.size).toBe(0);

  // The user signs in again, hours later: the group completes.
  failComplete = false;
  const again = await login();
  expect(again.status).toBe(200);
  expect(await again.json()).toEqual({ companyId: 'company-cld-9' });
  await mno.worker.drain();
  expect(await storage.jobs.counts({ type: JobTypes.billingSubscribe })).toMatchObject({ dead: 0, done: 1 });
  expect([...api.recurringBills.values()].filter((b) => b.status !== 'cancelled').map((b) => b.group_id)).toEqual(['cld-9']);
});
