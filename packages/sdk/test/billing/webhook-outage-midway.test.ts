// A storage outage that starts between two writes of an account webhook: the delivery answers
// 5xx, the outage ends, and Maestrano's retry (answered 200) must finish the operation, the
// user's block included (PROTOCOL §5.1/§5.2; docs/billing.md, "Failure-atomic").
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAccountModule } from '../../src/billing/index.js';
import type { RouteHandler, Tenant } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import type { AccountWebhookHooks } from '../../src/webhooks/account.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, makeRuntime, makeTenant, provisionGroup, provisionUser, resetServer } from './helpers.js';

const TENANT = 'maestrano-uat';
let api: AccountApiServer;
let storage: StorageAdapter;

beforeAll(async () => {
  api = await startAccountApiServer();
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  resetServer(api);
  api.addGroup('cld-1');
  storage = memoryAdapter();
});

/** Storage whose user writes fail while `down` is true (an outage), everything else working; `downAfterNextWrite` starts the outage right after the next user write commits. */
function outage(base: StorageAdapter) {
  const state = { down: false, downAfterNextWrite: false, loseNextMembershipAnswer: false };
  const wrote = () => {
    if (!state.downAfterNextWrite) return;
    state.downAfterNextWrite = false;
    state.down = true;
  };
  const users = base.users;
  const wrapped: StorageAdapter = {
    ...base,
    users: {
      ...users,
      get: users.get.bind(users),
      listMemberships: users.listMemberships.bind(users),
      upsertMembership: users.upsertMembership.bind(users),
      setStatus: async (...args: Parameters<typeof users.setStatus>) => {
        if (state.down) throw new Error('storage unreachable');
        const result = await users.setStatus(...args);
        wrote();
        return result;
      },
      setMembershipStatus: async (...args: Parameters<typeof users.setMembershipStatus>) => {
        if (state.down) throw new Error('storage unreachable');
        const result = await users.setMembershipStatus(...args);
        wrote();
        if (state.loseNextMembershipAnswer) {
          // Committed, but the answer is lost (the connection dropped after COMMIT).
          state.loseNextMembershipAnswer = false;
          throw new Error('Connection terminated unexpectedly');
        }
        return result;
      },
    },
  };
  return { storage: wrapped, state };
}

function setup(store: StorageAdapter, creationMode: 'real' | 'virtual') {
  const tenant = makeTenant(api, { creationMode });
  const { runtime } = makeRuntime(store, [tenant]);
  const blocked: string[] = [];
  const hooks: AccountWebhookHooks = {
    cancelCompany: () => {},
    removeMembership: () => {},
    blockUser: (user) => {
      blocked.push(user.uid);
    },
  };
  const mod = createAccountModule(runtime, { billing: { cancelRecurringBillsOnGroupDeleted: false }, hooks });
  return { tenant, routes: mod.contribution.routes!, blocked };
}

function call(handler: RouteHandler, tenant: Tenant, path: string, params: Record<string, string>) {
  const headers = new Headers({ authorization: basicAuth(tenant.api.id, tenant.api.key) });
  const request = new Request(`http://127.0.0.1${path}/${tenant.name}`, { method: 'DELETE', headers });
  return handler({ request, tenant, params });
}

describe('storage outage mid-way through an account webhook', () => {
  it('virtual mode, group deleted: the retry answered 200 has every group user blocked', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    await provisionUser(storage, TENANT, 'usr-1.cld-1', ['cld-1']);
    const { storage: flaky, state } = outage(storage);
    const { tenant, routes } = setup(flaky, 'virtual');

    state.downAfterNextWrite = true;
    const first = await call(routes.groupDeleted!, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
    expect(first.status).toBe(500);

    state.down = false; // the outage is over: Maestrano retries
    const retry = await call(routes.groupDeleted!, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
    expect(retry.status).toBe(200);
    expect((await storage.groups.get(TENANT, 'cld-1'))!.status).toBe('cancelled');
    // docs/billing.md: "in virtual identity mode ... calls blockUser for each active user of the group and marks them blocked"
    expect((await storage.users.get(TENANT, 'usr-1.cld-1'))!.status).toBe('blocked');
  });

  it('real mode, member removed from the last group: the retry answered 200 has the user blocked', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    await provisionUser(storage, TENANT, 'usr-2', ['cld-1']);
    const { storage: flaky, state } = outage(storage);
    const { tenant, routes } = setup(flaky, 'real');

    // The first write commits, then storage becomes unreachable: the second write and any
    // undo of the first fail.
    state.downAfterNextWrite = true;
    const first = await call(routes.groupUserDeleted!, tenant, '/maestrano/account/groups/cld-1/users/usr-2', { group_id: 'cld-1', id: 'usr-2' });
    expect(first.status).toBe(500);

    state.down = false;
    const retry = await call(routes.groupUserDeleted!, tenant, '/maestrano/account/groups/cld-1/users/usr-2', { group_id: 'cld-1', id: 'usr-2' });
    expect(retry.status).toBe(200);
    const memberships = await storage.users.listMemberships(TENANT, { uid: 'usr-2' });
    expect(memberships.map((m) => m.status)).toEqual(['removed']);
    // docs/billing.md step 5: "marks the membership removed and, for a last membership, the user blocked"
    expect((await storage.users.get(TENANT, 'usr-2'))!.status).toBe('blocked');
  });

  it('real mode, last group: a membership write that commits but reports a failure leaves the user blocked after the retry', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    await provisionUser(storage, TENANT, 'usr-2', ['cld-1']);
    const { storage: flaky, state } = outage(storage);
    const { tenant, routes } = setup(flaky, 'real');
    state.loseNextMembershipAnswer = true;
    const path = '/maestrano/account/groups/cld-1/users/usr-2';
    expect((await call(routes.groupUserDeleted!, tenant, path, { group_id: 'cld-1', id: 'usr-2' })).status).toBe(500);
    expect((await call(routes.groupUserDeleted!, tenant, path, { group_id: 'cld-1', id: 'usr-2' })).status).toBe(200);
    expect((await storage.users.listMemberships(TENANT, { uid: 'usr-2' })).map((m) => m.status)).toEqual(['removed']);
    expect((await storage.users.get(TENANT, 'usr-2'))!.status).toBe('blocked');
  });
});
