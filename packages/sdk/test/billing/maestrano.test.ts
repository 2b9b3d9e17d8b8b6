import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { JobTypes } from '../../src/core/types.js';
import { ConfigError } from '../../src/errors/index.js';
import { createMaestrano } from '../../src/maestrano.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestIdp, type TestIdp } from '../../src/testing/idp.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, provisionGroup, provisionUser, resetServer } from './helpers.js';

const TENANT = 'maestrano-test';
const APP = 'http://127.0.0.1:9';
let api: AccountApiServer;
let idp: TestIdp;
let storage: StorageAdapter;

beforeAll(async () => {
  api = await startAccountApiServer();
  idp = createTestIdp();
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  resetServer(api);
  api.addGroup('cld-1');
  storage = memoryAdapter();
});

function build(billing?: Parameters<typeof createMaestrano>[0]['billing']) {
  const cancelled: string[] = [];
  const blocked: string[] = [];
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: APP, apiId: api.apiId, apiKey: api.apiKey, idpHost: api.url })],
    storage,
    provisioning: {
      createCompany: () => ({ id: 'c-1' }),
      createUser: () => ({ id: 'u-1' }),
      cancelCompany: (company) => {
        cancelled.push(company.id);
      },
      blockUser: (user) => {
        blocked.push(user.id);
      },
    },
    onLogin: () => new Response('ok'),
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    ...(billing === undefined ? {} : { billing }),
  });
  return { mno, cancelled, blocked };
}

const request = (path: string, auth: string | null = basicAuth(api.apiId, api.apiKey)) =>
  new Request(`${APP}${path}`, { method: 'DELETE', headers: auth ? { authorization: auth } : {} });

describe('createMaestrano with the account/billing module', () => {
  it('serves the group deletion webhook through mno.handler', async () => {
    const { mno, cancelled } = build();
    await provisionGroup(storage, TENANT, 'cld-1', { companyId: 'c-1' });
    const res = await mno.handler(request(`/maestrano/account/groups/cld-1/${TENANT}`));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    expect((await storage.groups.get(TENANT, 'cld-1'))!.status).toBe('cancelled');
    expect(cancelled).toEqual(['c-1']);
  });

  it('serves the member removal webhook through mno.handler', async () => {
    const { mno, blocked } = build();
    await provisionGroup(storage, TENANT, 'cld-1', { companyId: 'c-1' });
    await provisionUser(storage, TENANT, 'usr-1', ['cld-1']);
    const res = await mno.handler(request(`/maestrano/account/groups/cld-1/users/usr-1/${TENANT}`));
    expect(res.status).toBe(200);
    expect((await storage.users.get(TENANT, 'usr-1'))!.status).toBe('blocked');
    expect(blocked).toEqual(['user-usr-1']);
  });

  it('answers 404 for an unknown tenant and 401 for bad credentials, changing nothing', async () => {
    const { mno, cancelled } = build();
    await provisionGroup(storage, TENANT, 'cld-1', { companyId: 'c-1' });
    const unknown = await mno.handler(request('/maestrano/account/groups/cld-1/other-marketplace'));
    expect(unknown.status).toBe(404);
    const wrong = await mno.handler(request(`/maestrano/account/groups/cld-1/${TENANT}`, basicAuth(api.apiId, 'nope')));
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: 'Invalid credentials' });
    expect((await storage.groups.get(TENANT, 'cld-1'))!.status).toBe('active');
    expect(cancelled).toEqual([]);
  });

  it('exposes mno.account(tenant) and mno.billing, and the billing.subscribe job when a plan hook is set', async () => {
    const { mno } = build({ onCompanyCreated: (company, group) => ({ priceCents: 1000, description: `${company.id} ${group.uid}` }) });
    expect(Object.keys(mno.jobs)).toContain(JobTypes.billingSubscribe);
    expect((await mno.account(TENANT).groups.retrieve('cld-1')).id).toBe('cld-1');
    const charged = await mno.billing.charge({
      tenant: TENANT,
      groupId: 'cld-1',
      priceCents: 100,
      currency: 'AUD',
      description: 'Setup fee',
      idempotencyKey: 'setup-cld-1',
    });
    expect(charged.status).toBe('created');
    expect((await mno.billing.bills.list(TENANT, { groupId: 'cld-1' })).map((b) => b.id)).toEqual([charged.billId]);
    expect(() => mno.account('nope')).toThrow(ConfigError);
  });

  it('rejects a bad billing section with a ConfigError naming billing.*', () => {
    const error = (() => {
      try {
        build({ cancelRecurringBillsOnGroupDeleted: 'no' } as never);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual(['billing.cancelRecurringBillsOnGroupDeleted']);
  });
});
