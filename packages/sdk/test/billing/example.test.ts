// Runs the billing guide's examples (examples/billing.ts) against the loopback Account API,
// so the documented code typechecks and works.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppStore, chargeSmsPack, createApp } from '../../examples/billing.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestIdp, type TestIdp } from '../../src/testing/idp.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, provisionGroup, provisionUser } from './helpers.js';

const TENANT = 'acme-market';
let api: AccountApiServer;
let idp: TestIdp;

beforeAll(async () => {
  api = await startAccountApiServer();
  api.addGroup('cld-1');
  idp = createTestIdp();
});
afterAll(async () => {
  await api.close();
});

function build() {
  const storage = memoryAdapter();
  const calls: string[] = [];
  const store: AppStore = {
    archiveCompany: async (id) => void calls.push(`archive ${id}`),
    removeMember: async (id, companyId) => void calls.push(`remove ${id} ${companyId}`),
    blockUser: async (id) => void calls.push(`block ${id}`),
    setSeatCount: async (id, seats) => void calls.push(`seats ${id} ${seats}`),
  };
  const mno = createApp(
    {
      tenants: [
        idp.marketplace({ name: TENANT, appHost: 'http://127.0.0.1:9', apiId: api.apiId, apiKey: api.apiKey, idpHost: api.url }),
      ],
      storage,
      provisioning: { createCompany: () => ({ id: 'c-1' }), createUser: () => ({ id: 'u-1' }) },
      onLogin: () => new Response('ok'),
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    },
    store,
  );
  return { mno, storage, calls };
}

describe('docs/billing.md examples', () => {
  it('charges an SMS pack exactly once per month and group, with the month as the period', async () => {
    const { mno } = build();
    const args = { tenant: TENANT, groupId: 'cld-1', month: '2030-12', packs: 3 };
    const first = await chargeSmsPack(mno, args);
    const again = await chargeSmsPack(mno, args);
    expect(first).toMatchObject({ status: 'created' });
    expect(again).toMatchObject({ status: 'replayed' });
    const bills = [...api.bills.values()];
    expect(bills).toHaveLength(1);
    expect(bills[0]).toMatchObject({
      units: '3',
      third_party: true,
      period_started_at: '2030-12-01T00:00:00.000Z',
      period_ended_at: '2030-12-31T23:59:59.999Z',
    });
  });

  it('wires the webhook hooks: group deletion archives the company, member removal blocks and counts seats', async () => {
    const { mno, storage, calls } = build();
    await provisionGroup(storage, TENANT, 'cld-1', { companyId: 'c-1' });
    await provisionUser(storage, TENANT, 'usr-1', ['cld-1']);
    const auth = { authorization: basicAuth(api.apiId, api.apiKey) };
    const removed = await mno.handler(
      new Request(`http://127.0.0.1:9/maestrano/account/groups/cld-1/users/usr-1/${TENANT}`, { method: 'DELETE', headers: auth }),
    );
    expect(removed.status).toBe(200);
    const deleted = await mno.handler(
      new Request(`http://127.0.0.1:9/maestrano/account/groups/cld-1/${TENANT}`, { method: 'DELETE', headers: auth }),
    );
    expect(deleted.status).toBe(200);
    expect(calls).toEqual(['remove user-usr-1 c-1', 'block user-usr-1', 'seats c-1 0', 'archive c-1']);
  });
});
