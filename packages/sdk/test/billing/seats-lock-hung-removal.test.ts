// A member removal whose onSeatsChanged never settles (it ignores its ctx.signal) does not hold
// the group's seats lock for good: the webhook stops waiting for it after three lock leases, as a
// login stops waiting for its hooks after three claim TTLs, aborts its ctx.signal and answers 500
// with nothing written, so the other seat changes of the group (removals, logins adding a member)
// go on, and Maestrano's retry reports again and writes.
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import type { RouteHandler, Tenant } from '../../src/core/types.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createAccountWebhooks } from '../../src/webhooks/account.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, makeRuntime, makeTenant, provisionGroup, provisionUser, resetServer, settleOnFakeTime } from './helpers.js';

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
afterEach(() => {
  vi.useRealTimers();
});

function remove(handler: RouteHandler, tenant: Tenant, uid: string) {
  const headers = new Headers({ authorization: basicAuth(tenant.api.id, tenant.api.key) });
  const request = new Request(`http://127.0.0.1/maestrano/account/groups/cld-1/users/${uid}/${tenant.name}`, { method: 'DELETE', headers });
  return handler({ request, tenant, params: { group_id: 'cld-1', id: uid } });
}

it('a removal whose onSeatsChanged never settles gives the seats lock up (500, nothing written): the group\'s other seat changes go on', async () => {
  const storage = memoryAdapter();
  await provisionGroup(storage, TENANT, 'cld-1');
  for (const uid of ['usr-1', 'usr-2', 'usr-3']) await provisionUser(storage, TENANT, uid, ['cld-1']);
  const tenant = makeTenant(api);
  const { runtime, logger } = makeRuntime(storage, [tenant]);
  let hang = true;
  let hungSignal: AbortSignal | undefined;
  let reached!: () => void;
  const firstReporting = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const reports: { removed: string; activeSeats: number }[] = [];
  const webhooks = createAccountWebhooks({
    storage,
    logger,
    hooks: {
      onSeatsChanged: (_company, change, ctx) => {
        reports.push({ removed: change.removed[0] as string, activeSeats: change.activeSeats });
        if (change.removed[0] !== 'usr-1' || !hang) return;
        hungSignal = ctx.signal;
        reached();
        // The app's billing call hangs and ignores the signal.
        return new Promise<void>(() => {});
      },
    },
    account: () => {
      throw new Error('no account API call expected');
    },
    cancelRecurringBills: false,
    instanceId: runtime.instanceId,
    // A short lease (the default is 120 s); a wait for the seats lock longer than three leases.
    lockTtlMs: 300,
    lockWaitMs: 3_000,
  });
  const active = async () =>
    (await storage.users.listMemberships(TENANT, { groupId: 'cld-1' }))
      .filter((m) => m.status === 'active')
      .map((m) => m.uid)
      .sort();

  // On fake time (Date and performance included): with a 300 ms lease, a write reads its seats
  // lock as lost 225 ms after the last confirmed renewal, and a stall that long on a loaded
  // machine made a removal that holds the lock answer 503.
  vi.useFakeTimers();
  const first = remove(webhooks.groupUserDeleted, tenant, 'usr-1');
  await settleOnFakeTime(firstReporting);
  // Another removal of the group waits for the seats lock: it gets it once the hung report is given up.
  const second = await settleOnFakeTime(remove(webhooks.groupUserDeleted, tenant, 'usr-2'));
  expect(second.status).toBe(200);
  const a = await first;
  expect(a.status).toBe(500);
  expect(hungSignal?.aborted).toBe(true);
  // usr-1's removal wrote nothing; usr-2's did.
  expect(await active()).toEqual(['usr-1', 'usr-3']);
  expect((await storage.users.get(TENANT, 'usr-1'))?.status).toBe('active');

  // Maestrano's retry (the app answers now): reported with the real count, then written.
  hang = false;
  expect((await settleOnFakeTime(remove(webhooks.groupUserDeleted, tenant, 'usr-1'))).status).toBe(200);
  expect(await active()).toEqual(['usr-3']);
  expect(reports.at(-1)).toEqual({ removed: 'usr-1', activeSeats: 1 });
}, 20_000);
