/**
 * Account webhooks racing SSO logins, through the whole app: `createMaestrano` served on
 * loopback HTTP, signed SAML responses from the test IdP posted to the ACS, webhook DELETEs
 * with the tenant's Basic credentials, the Account API on loopback, memory storage.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { toNodeListener } from '../../src/http/node.js';
import { createMaestrano } from '../../src/maestrano.js';
import type { ProvisioningHooks } from '../../src/sso/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestIdp, type TestIdp, type TestUser } from '../../src/testing/idp.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, provisionGroup, provisionUser, resetServer } from './helpers.js';

const TENANT = 'maestrano-test';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
  server = undefined;
});

/** The app on loopback with `hooks` (ids handed out per call); returns how to log in and call its webhooks. */
async function startApp(hooks: Partial<ProvisioningHooks>) {
  let handler: ((request: Request) => Promise<Response>) | undefined;
  server = createServer((req, res) => {
    void toNodeListener((request) => handler!(request))(req, res);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let seq = 0;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: appUrl, apiId: api.apiId, apiKey: api.apiKey, idpHost: api.url })],
    storage,
    provisioning: {
      createCompany: () => ({ id: `company-${++seq}` }),
      createUser: () => ({ id: `user-${++seq}` }),
      ...hooks,
    },
    onLogin: ({ user, company }) => Response.json({ userId: user.id, companyId: company.id }),
    sso: { allowIdpInitiated: true },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;
  const acsUrl = `${appUrl}/maestrano/auth/saml/consume/${TENANT}`;
  return {
    /** An IdP-initiated login of `user` (signed assertion posted to the ACS). */
    async login(user: TestUser) {
      const res = await fetch(acsUrl, {
        method: 'POST',
        body: new URLSearchParams({ SAMLResponse: idp.response(user, { acsUrl, inResponseTo: null }) }),
        redirect: 'manual',
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    /** A webhook DELETE as Maestrano sends it. */
    async webhook(path: string) {
      const res = await fetch(`${appUrl}${path}/${TENANT}`, { method: 'DELETE', headers: { authorization: basicAuth(api.apiId, api.apiKey) } });
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown> };
    },
  };
}

const member = (uid: string, groupUid: string): TestUser => ({ uid, email: `${uid}@example.com`, groupUid });

async function activeSeats(groupId: string) {
  return (await storage.users.listMemberships(TENANT, { groupId, status: 'active' })).length;
}

describe('group deletion during the first SSO login of the group', () => {
  it('is not lost: the deletion waits for the login to provision the company, then cancels it', async () => {
    const cancelled: string[] = [];
    // The deletion's probe of the group finds the login's provisioning claim pending (it waits).
    // Conditions, not sleeps: on a loaded machine the login could take longer than a fixed wait
    // to reach createCompany (the deletion then came first), or the deletion longer than
    // createCompany to reach the group (the login then completed before it).
    const inner = storage;
    let probedPending!: () => void;
    const deletionWaits = new Promise<void>((resolve) => {
      probedPending = resolve;
    });
    storage = {
      ...inner,
      groups: {
        ...inner.groups,
        claim: async (tenant, groupId, options) => {
          const claim = await inner.groups.claim(tenant, groupId, options);
          if (options.owner.includes(':webhook-probe:') && claim.state === 'pending') probedPending();
          return claim;
        },
      },
    };
    let entered!: () => void;
    const creating = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const app = await startApp({
      createCompany: async () => {
        entered();
        await deletionWaits; // the app's call is slow: the deletion arrives meanwhile
        return { id: 'company-slow' };
      },
      cancelCompany: (company) => {
        cancelled.push(company.id);
      },
    });
    api.addGroup('cld-1');
    const login = app.login(member('usr-1', 'cld-1'));
    await creating; // the login holds the group's provisioning claim, createCompany runs
    const deletion = await app.webhook('/maestrano/account/groups/cld-1');
    expect(deletion).toEqual({ status: 200, retryAfter: null, body: { success: true } });
    expect((await login).status).toBe(200);
    expect((await storage.groups.get(TENANT, 'cld-1'))!.status).toBe('cancelled');
    expect(cancelled).toEqual(['company-slow']);
  });
});

describe('onSeatsChanged under concurrent seat changes of one group', () => {
  it('concurrent SSO logins adding members report in order: the last report is the real count', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    // What the app's seat billing ends up with: the value of the report that finished last.
    const finished: number[] = [];
    let reports = 0;
    const app = await startApp({
      addMembership: async (user) => {
        if (user.uid === 'usr-2') await sleep(50); // the second login writes while the first reports
      },
      onSeatsChanged: async (_company, change) => {
        if (++reports === 1) await sleep(300); // the first report is slow (a billing provider call)
        finished.push(change.activeSeats);
      },
    });
    const answers = await Promise.all([app.login(member('usr-1', 'cld-1')), app.login(member('usr-2', 'cld-1'))]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(await activeSeats('cld-1')).toBe(2);
    expect(finished).toEqual([1, 2]);
  });

  it('a member removed while another logs in: the last report is the real count', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    await provisionUser(storage, TENANT, 'usr-1', ['cld-1']);
    await provisionUser(storage, TENANT, 'usr-2', ['cld-1']);
    const reported: { activeSeats: number; added: string[]; removed: string[] }[] = [];
    const app = await startApp({
      removeMembership: async () => {
        await sleep(300); // the app's own write takes a moment
      },
      onSeatsChanged: (_company, change) => {
        reported.push(change);
      },
    });
    const removal = app.webhook('/maestrano/account/groups/cld-1/users/usr-2');
    await sleep(30);
    const login = await app.login(member('usr-3', 'cld-1'));
    expect(login.status).toBe(200);
    expect((await removal).status).toBe(200);
    expect(await activeSeats('cld-1')).toBe(2);
    expect(reported).toEqual([
      { activeSeats: 3, added: ['usr-3'], removed: [] },
      { activeSeats: 2, added: [], removed: ['usr-2'] },
    ]);
  });
});
