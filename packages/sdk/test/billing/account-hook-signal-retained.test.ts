// The ctx.signal an account webhook hands a hook is not kept alive once the webhook answered,
// also when the hook left an abort listener on it (a client that removes its listener only when
// aborted). Joined with `AbortSignal.any`, Node 20 keeps every such signal (and what its
// listeners hold) in a process-wide set until it aborts: one more per hook call, for good.
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { Tenant } from '../../src/core/types.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createAccountWebhooks } from '../../src/webhooks/account.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, makeRuntime, makeTenant, provisionGroup, provisionUser, resetServer } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const TENANT = 'maestrano-uat';
let api: AccountApiServer;
beforeAll(async () => {
  api = await startAccountApiServer();
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  resetServer(api);
});

it('the signals of settled hook calls are not retained by a listener the hook left on them', async () => {
  const storage = memoryAdapter();
  await provisionGroup(storage, TENANT, 'cld-1');
  const uids = ['usr-1', 'usr-2', 'usr-3', 'usr-4'];
  for (const uid of uids) await provisionUser(storage, TENANT, uid, ['cld-1']);
  const tenant: Tenant = makeTenant(api);
  const { runtime, logger } = makeRuntime(storage, [tenant]);
  const signals: WeakRef<AbortSignal>[] = [];
  const keep = (signal: AbortSignal) => {
    signals.push(new WeakRef(signal));
    // The app's client cancels its call on abort and forgets the listener only then.
    signal.addEventListener('abort', () => {});
  };
  const webhooks = createAccountWebhooks({
    storage,
    logger,
    hooks: {
      removeMembership: (_user, _company, ctx) => keep(ctx.signal),
      onSeatsChanged: (_company, _change, ctx) => keep(ctx.signal),
    },
    account: () => {
      throw new Error('no account API call expected');
    },
    cancelRecurringBills: false,
    instanceId: runtime.instanceId,
  });
  for (const uid of uids) {
    const headers = new Headers({ authorization: basicAuth(tenant.api.id, tenant.api.key) });
    const request = new Request(`http://127.0.0.1/maestrano/account/groups/cld-1/users/${uid}/${tenant.name}`, { method: 'DELETE', headers });
    const response = await webhooks.groupUserDeleted({ request, tenant, params: { group_id: 'cld-1', id: uid } });
    expect(response.status).toBe(200);
  }
  expect(signals).toHaveLength(8);
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  expect(signals.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
});

it("a hook's ctx.signal still aborts when the platform hangs up during the hook (500, nothing written)", async () => {
  const storage = memoryAdapter();
  await provisionGroup(storage, TENANT, 'cld-1');
  await provisionUser(storage, TENANT, 'usr-1', ['cld-1']);
  const tenant: Tenant = makeTenant(api);
  const { runtime, logger } = makeRuntime(storage, [tenant]);
  const hangUp = new AbortController();
  let reason: unknown;
  const webhooks = createAccountWebhooks({
    storage,
    logger,
    hooks: {
      removeMembership: (_user, _company, ctx) =>
        new Promise<void>((_, reject) => {
          ctx.signal.addEventListener('abort', () => {
            reason = ctx.signal.reason;
            reject(ctx.signal.reason);
          });
          hangUp.abort(new Error('platform hung up'));
        }),
    },
    account: () => {
      throw new Error('no account API call expected');
    },
    cancelRecurringBills: false,
    instanceId: runtime.instanceId,
  });
  const headers = new Headers({ authorization: basicAuth(tenant.api.id, tenant.api.key) });
  const request = new Request(`http://127.0.0.1/maestrano/account/groups/cld-1/users/usr-1/${tenant.name}`, { method: 'DELETE', headers, signal: hangUp.signal });
  const response = await webhooks.groupUserDeleted({ request, tenant, params: { group_id: 'cld-1', id: 'usr-1' } });
  expect(response.status).toBe(500);
  expect((reason as Error).message).toBe('platform hung up');
  expect((await storage.users.listMemberships(TENANT, { groupId: 'cld-1' })).map((m) => m.status)).toEqual(['active']);
});

it('a hook that fails or succeeds after the webhook gave up on it changes nothing (500, no unhandled rejection)', async () => {
  const storage = memoryAdapter();
  await provisionGroup(storage, TENANT, 'cld-1');
  for (const uid of ['usr-1', 'usr-2']) await provisionUser(storage, TENANT, uid, ['cld-1']);
  const tenant: Tenant = makeTenant(api);
  const { runtime, logger } = makeRuntime(storage, [tenant]);
  const settled: Promise<void>[] = [];
  const webhooks = createAccountWebhooks({
    storage,
    logger,
    hooks: {
      // Settles (usr-1: fails, usr-2: succeeds) once its signal is aborted, i.e. after the give-up.
      onSeatsChanged: (_company, change, ctx) => {
        const late = new Promise<void>((resolve, reject) => {
          ctx.signal.addEventListener('abort', () => setImmediate(() => (change.removed[0] === 'usr-1' ? reject(new Error('late failure')) : resolve())));
        });
        settled.push(late.catch(() => {}));
        return late;
      },
    },
    account: () => {
      throw new Error('no account API call expected');
    },
    cancelRecurringBills: false,
    instanceId: runtime.instanceId,
    lockTtlMs: 100,
  });
  for (const uid of ['usr-1', 'usr-2']) {
    const headers = new Headers({ authorization: basicAuth(tenant.api.id, tenant.api.key) });
    const request = new Request(`http://127.0.0.1/maestrano/account/groups/cld-1/users/${uid}/${tenant.name}`, { method: 'DELETE', headers });
    expect((await webhooks.groupUserDeleted({ request, tenant, params: { group_id: 'cld-1', id: uid } })).status).toBe(500);
  }
  await Promise.all(settled);
  await new Promise((resolve) => setImmediate(resolve));
  expect((await storage.users.listMemberships(TENANT, { groupId: 'cld-1' })).map((m) => m.status)).toEqual(['active', 'active']);
  expect((await storage.users.get(TENANT, 'usr-1'))?.status).toBe('active');
  // No lock is left: the seats and user locks are free for the retry.
  expect(await storage.locks.acquire('seats:maestrano-uat:cld-1', 'probe', 1_000)).toBe(true);
  expect(await storage.locks.acquire('webhook:user:maestrano-uat:usr-1', 'probe', 1_000)).toBe(true);
});

it('a group deletion (virtual mode) whose blockUser never settles writes nothing, and its retry completes', async () => {
  const storage = memoryAdapter();
  await provisionGroup(storage, TENANT, 'cld-1');
  for (const uid of ['usr-1.cld-1', 'usr-2.cld-1']) await provisionUser(storage, TENANT, uid, ['cld-1']);
  const tenant: Tenant = makeTenant(api, { creationMode: 'virtual' });
  const { runtime, logger } = makeRuntime(storage, [tenant]);
  let hang = true;
  const calls: string[] = [];
  const webhooks = createAccountWebhooks({
    storage,
    logger,
    hooks: {
      cancelCompany: (_company, ctx) => {
        calls.push(ctx.idempotencyKey);
      },
      blockUser: (user, _company, ctx) => {
        calls.push(ctx.idempotencyKey);
        if (hang && user.uid === 'usr-2.cld-1') return new Promise<void>(() => {});
      },
    },
    account: () => {
      throw new Error('no account API call expected');
    },
    cancelRecurringBills: false,
    instanceId: runtime.instanceId,
    lockTtlMs: 100,
  });
  const deleteGroup = () => {
    const headers = new Headers({ authorization: basicAuth(tenant.api.id, tenant.api.key) });
    const request = new Request(`http://127.0.0.1/maestrano/account/groups/cld-1/${tenant.name}`, { method: 'DELETE', headers });
    return webhooks.groupDeleted({ request, tenant, params: { id: 'cld-1' } });
  };
  expect((await deleteGroup()).status).toBe(500);
  expect((await storage.groups.get(TENANT, 'cld-1'))?.status).not.toBe('cancelled');
  expect((await storage.users.get(TENANT, 'usr-1.cld-1'))?.status).toBe('active');
  const firstCalls = [...calls];
  hang = false;
  expect((await deleteGroup()).status).toBe(200);
  expect((await storage.groups.get(TENANT, 'cld-1'))?.status).toBe('cancelled');
  expect((await storage.users.get(TENANT, 'usr-1.cld-1'))?.status).toBe('blocked');
  expect((await storage.users.get(TENANT, 'usr-2.cld-1'))?.status).toBe('blocked');
  // The retry calls the same hooks under the same keys.
  expect(calls.slice(firstCalls.length, firstCalls.length + 3)).toEqual(firstCalls);
});
