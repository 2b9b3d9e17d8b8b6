// A group deletion acknowledged (200) for a group nobody has signed in to yet must hold: a first
// login for that group whose assertion was issued before the deletion, posted after it, is
// refused instead of provisioning a live company that nothing would ever cancel; and a company
// a first login created without completing the group (its process died, or its `createCompany`
// outlasted its claim) is cancelled by whichever of the deletion and the login comes second.
// Through `mno.handler` on loopback HTTP, with RSA-signed assertions from the test IdP.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { GROUP_COMPANY_MARK } from '../../src/core/types.js';
import { toNodeListener } from '../../src/http/node.js';
import { createMaestrano } from '../../src/maestrano.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock } from '../../src/testing/conformance/clock.js';
import { createTestIdp, type TestIdp } from '../../src/testing/idp.js';
import type { SsoGroup } from '../../src/sso/types.js';
import { type AccountApiServer, startAccountApiServer } from '../billing/account-api-server.js';
import { basicAuth, resetServer } from '../billing/helpers.js';

const TENANT = 'maestrano-test';
let api: AccountApiServer;
let idp: TestIdp;
let storage: StorageAdapter;
let server: Server | undefined;

beforeAll(async () => {
  api = await startAccountApiServer();
  idp = createTestIdp();
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  resetServer(api);
  api.addGroup('cld-9');
  storage = memoryAdapter();
});
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

/**
 * The app on loopback: `created` holds the groups `createCompany` ran for, `cancelled` the
 * companies `cancelCompany` got; `login` posts usr-1's assertion (issued now, or at `clock`'s
 * time) for a group, `del` sends the group's deletion webhook.
 */
async function startApp(options: { storage?: StorageAdapter; clock?: () => Date; beforeCreate?: () => Promise<void> } = {}) {
  const created: string[] = [];
  const cancelled: string[] = [];
  const plans: string[] = [];
  server = createServer((req, res) => void toNodeListener((r) => mno.handler(r))(req, res));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: appUrl, apiId: api.apiId, apiKey: api.apiKey, idpHost: api.url })],
    storage: options.storage ?? storage,
    ...(options.clock ? { clock: options.clock } : {}),
    provisioning: {
      createCompany: async (g: SsoGroup) => {
        await options.beforeCreate?.();
        created.push(g.uid);
        return { id: `company-${g.uid}` };
      },
      createUser: () => ({ id: 'user-1' }),
      cancelCompany: (c) => {
        cancelled.push(`${c.tenant}/${c.groupId}/${c.id}`);
      },
    },
    billing: {
      onCompanyCreated: () => {
        plans.push('asked');
        return { priceCents: 1000, description: 'Monthly plan' };
      },
    },
    onLogin: ({ company }) => Response.json({ companyId: company.id }),
    sso: { allowIdpInitiated: true },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  const acsUrl = `${appUrl}/maestrano/auth/saml/consume/${TENANT}`;
  const assertion = (groupUid: string) =>
    idp.response({ uid: 'usr-1', email: 'usr-1@example.com', groupUid }, { acsUrl, inResponseTo: null, ...(options.clock ? { now: options.clock() } : {}) });
  const post = (samlResponse: string) => fetch(acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: samlResponse }), redirect: 'manual' });
  return {
    mno,
    created,
    cancelled,
    plans,
    assertion,
    post,
    login: (groupUid = 'cld-9') => post(assertion(groupUid)),
    del: (groupId = 'cld-9') =>
      fetch(`${appUrl}/maestrano/account/groups/${groupId}/${TENANT}`, { method: 'DELETE', headers: { authorization: basicAuth(api.apiId, api.apiKey) } }),
  };
}

it('a deletion answered 200 before the first login: the login is refused (403) and creates nothing', async () => {
  const app = await startApp();
  // The IdP issued the assertion (user is on the way to the app) ...
  const samlResponse = app.assertion('cld-9');
  // ... then Maestrano deletes the group and the app acknowledges it.
  expect((await app.del()).status).toBe(200);
  // The browser posts the assertion after the acknowledged deletion.
  const login = await app.post(samlResponse);
  expect(login.status).toBe(403);
  expect(await login.text()).toContain('This account has been cancelled');
  expect(app.created).toEqual([]);
  expect(await storage.groups.get(TENANT, 'cld-9')).toBeNull();
  expect(await storage.users.get(TENANT, 'usr-1')).toBeNull();
  // No claim is left behind by the refused login either.
  expect(await storage.groups.claim(TENANT, 'cld-9', { owner: 'probe', ttlMs: 1_000 })).toEqual({ state: 'claimed', takeover: false });
  await storage.groups.release(TENANT, 'cld-9', 'probe');

  // Another group of the same user is not affected.
  api.addGroup('cld-10');
  expect((await app.login('cld-10')).status).toBe(200);
  expect(app.created).toEqual(['cld-10']);
  expect(app.cancelled).toEqual([]);
});

it('a first login that created the company and died before completing the group: the deletion cancels that company', async () => {
  const memory = memoryAdapter();
  let failComplete = true;
  // The login's process dies right after `createCompany` (here: its last write fails, and
  // nothing after it runs, as after a SIGKILL).
  const dying: StorageAdapter = {
    ...memory,
    groups: { ...memory.groups, complete: (...args) => (failComplete ? Promise.reject(new Error('process killed')) : memory.groups.complete(...args)) },
  };
  const app = await startApp({ storage: dying });
  expect((await app.login()).status).toBeGreaterThanOrEqual(500);
  failComplete = false;
  expect(await memory.groups.get(TENANT, 'cld-9')).toBeNull();

  expect((await app.del()).status).toBe(200);
  expect(app.cancelled).toEqual([`${TENANT}/cld-9/company-cld-9`]);
  // The user's next login is refused, and it and a replayed deletion cancel the same company
  // again (the app's cancelCompany is idempotent by its key).
  expect((await app.login()).status).toBe(403);
  expect((await app.del()).status).toBe(200);
  expect(app.cancelled).toEqual(Array(3).fill(`${TENANT}/cld-9/company-cld-9`));
  // The subscription job the login enqueued ends at once: the group will never be completed,
  // so waiting for it (JobDeferral) would only end as a dead letter.
  expect(await app.mno.billing.subscribe({ tenant: TENANT, groupId: 'cld-9', companyId: 'company-cld-9' })).toEqual({ status: 'group_cancelled' });
  expect(app.plans).toEqual([]);
  expect(api.recurringBills.size).toBe(0);
});

it('a createCompany outlasting its claim while the group is deleted (200, nothing recorded yet): the login cancels the company it created', async () => {
  const clock = createTestClock(Date.now());
  const slow = memoryAdapter({ clock: clock.now });
  let entered!: () => void;
  const inHook = new Promise<void>((r) => (entered = r));
  let finish!: () => void;
  const release = new Promise<void>((r) => (finish = r));
  const app = await startApp({
    storage: slow,
    clock: clock.now,
    beforeCreate: async () => {
      entered();
      await release; // a slow app database
    },
  });
  const loginDone = app.login();
  await inHook;
  // The provisioning claim (30 s by default) expires while createCompany runs.
  clock.advance(31_000);
  expect((await app.del()).status).toBe(200);
  expect(app.cancelled).toEqual([]); // nothing recorded yet: "never provisioned"
  finish();
  expect((await loginDone).status).toBe(403);
  // The login created the app's company and recorded it ...
  expect(app.created).toEqual(['cld-9']);
  expect((await slow.cursors.get({ tenant: TENANT, groupId: 'cld-9', ...GROUP_COMPANY_MARK }))?.data).toEqual({ companyId: 'company-cld-9' });
  // ... and a deletion was acknowledged: that company must end cancelled.
  expect(app.cancelled).toEqual([`${TENANT}/cld-9/company-cld-9`]);
});
