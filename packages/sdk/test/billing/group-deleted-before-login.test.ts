// A group deletion acknowledged (200) for a group nobody has signed in to yet must hold: a first
// login for that group whose assertion was issued before the deletion, posted after it, is
// refused instead of provisioning a live company that nothing would ever cancel. Through
// `mno.handler` on loopback HTTP, with RSA-signed assertions from the test IdP.
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
  storage = memoryAdapter();
});
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

it('a deletion answered 200 before the first login: the login is refused (403) and creates nothing', async () => {
  const cancelled: string[] = [];
  const created: string[] = [];
  let handler: ((r: Request) => Promise<Response>) | undefined;
  server = createServer((req, res) => void toNodeListener((r) => handler!(r))(req, res));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: appUrl, apiId: api.apiId, apiKey: api.apiKey, idpHost: api.url })],
    storage,
    provisioning: {
      createCompany: (g) => {
        created.push(g.uid);
        return { id: `company-${g.uid}` };
      },
      createUser: () => ({ id: 'user-1' }),
      cancelCompany: (c) => {
        cancelled.push(c.id);
      },
    },
    onLogin: ({ company }) => Response.json({ companyId: company.id }),
    sso: { allowIdpInitiated: true },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;
  api.addGroup('cld-9');
  const acsUrl = `${appUrl}/maestrano/auth/saml/consume/${TENANT}`;
  // The IdP issued the assertion (user is on the way to the app) ...
  const samlResponse = idp.response({ uid: 'usr-1', email: 'usr-1@example.com', groupUid: 'cld-9' }, { acsUrl, inResponseTo: null });
  // ... then Maestrano deletes the group and the app acknowledges it.
  const del = await fetch(`${appUrl}/maestrano/account/groups/cld-9/${TENANT}`, {
    method: 'DELETE',
    headers: { authorization: basicAuth(api.apiId, api.apiKey) },
  });
  expect(del.status).toBe(200);
  // The browser posts the assertion after the acknowledged deletion.
  const login = await fetch(acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: samlResponse }), redirect: 'manual' });
  expect(login.status).toBe(403);
  expect(await login.text()).toContain('This account has been cancelled');
  expect(created).toEqual([]);
  expect(await storage.groups.get(TENANT, 'cld-9')).toBeNull();
  expect(await storage.users.get(TENANT, 'usr-1')).toBeNull();
  // No claim is left behind by the refused login either.
  expect(await storage.groups.claim(TENANT, 'cld-9', { owner: 'probe', ttlMs: 1_000 })).toEqual({ state: 'claimed', takeover: false });
  await storage.groups.release(TENANT, 'cld-9', 'probe');

  // Another group of the same user is not affected.
  api.addGroup('cld-10');
  const other = idp.response({ uid: 'usr-1', email: 'usr-1@example.com', groupUid: 'cld-10' }, { acsUrl, inResponseTo: null });
  const ok = await fetch(acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: other }), redirect: 'manual' });
  expect(ok.status).toBe(200);
  expect(created).toEqual(['cld-10']);
  expect(cancelled).toEqual([]);
});

it('a first login that created the company and died before completing the group: the deletion cancels that company', async () => {
  const cancelled: string[] = [];
  const memory = memoryAdapter();
  let failComplete = true;
  // The login's process dies right after `createCompany` (here: its last write fails, and
  // nothing after it runs, as after a SIGKILL).
  const dying: StorageAdapter = {
    ...memory,
    groups: { ...memory.groups, complete: (...args) => (failComplete ? Promise.reject(new Error('process killed')) : memory.groups.complete(...args)) },
  };
  let handler: ((r: Request) => Promise<Response>) | undefined;
  server = createServer((req, res) => void toNodeListener((r) => handler!(r))(req, res));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: appUrl, apiId: api.apiId, apiKey: api.apiKey, idpHost: api.url })],
    storage: dying,
    provisioning: {
      createCompany: (g) => ({ id: `company-${g.uid}` }),
      createUser: () => ({ id: 'user-1' }),
      cancelCompany: (c) => {
        cancelled.push(`${c.tenant}/${c.groupId}/${c.id}`);
      },
    },
    onLogin: ({ company }) => Response.json({ companyId: company.id }),
    sso: { allowIdpInitiated: true },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;
  api.addGroup('cld-9');
  const acsUrl = `${appUrl}/maestrano/auth/saml/consume/${TENANT}`;
  const login = () =>
    fetch(acsUrl, {
      method: 'POST',
      body: new URLSearchParams({ SAMLResponse: idp.response({ uid: 'usr-1', email: 'usr-1@example.com', groupUid: 'cld-9' }, { acsUrl, inResponseTo: null }) }),
      redirect: 'manual',
    });
  expect((await login()).status).toBeGreaterThanOrEqual(500);
  failComplete = false;
  expect(await memory.groups.get(TENANT, 'cld-9')).toBeNull();

  const del = () => fetch(`${appUrl}/maestrano/account/groups/cld-9/${TENANT}`, { method: 'DELETE', headers: { authorization: basicAuth(api.apiId, api.apiKey) } });
  expect((await del()).status).toBe(200);
  expect(cancelled).toEqual([`${TENANT}/cld-9/company-cld-9`]);
  // The user's next login is refused, and it and a replayed deletion cancel the same company
  // again (the app's cancelCompany is idempotent by its key).
  expect((await login()).status).toBe(403);
  expect((await del()).status).toBe(200);
  expect(cancelled).toEqual(Array(3).fill(`${TENANT}/cld-9/company-cld-9`));
});

it('a createCompany outlasting its claim while the group is deleted (200, nothing recorded yet): the login cancels the company it created', async () => {
  resetServer(api);
  api.addGroup('cld-9');
  const clock = createTestClock(Date.now());
  const slow = memoryAdapter({ clock: clock.now });
  const created: string[] = [];
  const cancelled: string[] = [];
  let entered!: () => void;
  const inHook = new Promise<void>((r) => (entered = r));
  let finish!: () => void;
  const release = new Promise<void>((r) => (finish = r));
  let handler: ((r: Request) => Promise<Response>) | undefined;
  server = createServer((req, res) => void toNodeListener((r) => handler!(r))(req, res));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: appUrl, apiId: api.apiId, apiKey: api.apiKey, idpHost: api.url })],
    storage: slow,
    clock: clock.now,
    provisioning: {
      createCompany: async (g) => {
        entered();
        await release; // a slow app database
        created.push(`company-${g.uid}`);
        return { id: `company-${g.uid}` };
      },
      createUser: () => ({ id: 'user-1' }),
      cancelCompany: (c) => {
        cancelled.push(c.id);
      },
    },
    onLogin: ({ company }) => Response.json({ companyId: company.id }),
    sso: { allowIdpInitiated: true },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;
  const acsUrl = `${appUrl}/maestrano/auth/saml/consume/${TENANT}`;
  const loginDone = fetch(acsUrl, {
    method: 'POST',
    body: new URLSearchParams({ SAMLResponse: idp.response({ uid: 'usr-1', email: 'usr-1@example.com', groupUid: 'cld-9' }, { acsUrl, inResponseTo: null, now: clock.now() }) }),
    redirect: 'manual',
  });
  await inHook;
  // The provisioning claim (30 s by default) expires while createCompany runs.
  clock.advance(31_000);
  const del = await fetch(`${appUrl}/maestrano/account/groups/cld-9/${TENANT}`, { method: 'DELETE', headers: { authorization: basicAuth(api.apiId, api.apiKey) } });
  expect(del.status).toBe(200);
  expect(cancelled).toEqual([]); // nothing recorded yet: "never provisioned"
  finish();
  const login = await loginDone;
  expect(login.status).toBe(403);
  // The login created the app's company and recorded it ...
  expect(created).toEqual(['company-cld-9']);
  expect((await slow.cursors.get({ tenant: TENANT, groupId: 'cld-9', ...GROUP_COMPANY_MARK }))?.data).toEqual({ companyId: 'company-cld-9' });
  // ... and a deletion was acknowledged: that company must end cancelled.
  expect(cancelled).toEqual(['company-cld-9']);
});
