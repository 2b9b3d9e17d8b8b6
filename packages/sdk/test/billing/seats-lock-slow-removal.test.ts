// The member removal webhook's seat report (onSeatsChanged) that runs longer than the seats
// lock's lease keeps the lock: another seat change of the group does not count (the removed
// member still active) and report meanwhile, so the last report carries the real count. A
// removal whose lock was lost anyway (its renewals unanswered, then refused) writes nothing:
// 503, and its retry reports again and writes.
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import type { RouteHandler, Tenant } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { type AccountSeatsChange, createAccountWebhooks } from '../../src/webhooks/account.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, makeRuntime, makeTenant, provisionGroup, provisionUser, resetServer, settleOnFakeTime } from './helpers.js';

const TENANT = 'maestrano-uat';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
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

async function setup(storage: StorageAdapter, onSeatsChanged: (change: AccountSeatsChange) => Promise<void>) {
  await provisionGroup(storage, TENANT, 'cld-1');
  for (const uid of ['usr-1', 'usr-2', 'usr-3']) await provisionUser(storage, TENANT, uid, ['cld-1']);
  const tenant = makeTenant(api);
  const { runtime, logger } = makeRuntime(storage, [tenant]);
  const calls: string[] = [];
  const reports: { removed: string; activeSeats: number }[] = [];
  const webhooks = createAccountWebhooks({
    storage,
    logger,
    hooks: {
      removeMembership: (user, _company, ctx) => void calls.push(`removeMembership:${user.uid}:${ctx.idempotencyKey}`),
      onSeatsChanged: async (_company, change) => {
        reports.push({ removed: change.removed[0] as string, activeSeats: change.activeSeats });
        await onSeatsChanged(change);
      },
    },
    account: () => {
      throw new Error('no account API call expected');
    },
    cancelRecurringBills: false,
    instanceId: runtime.instanceId,
    // A short lease (the default is 120 s) and a wait longer than the slow report.
    lockTtlMs: 300,
    lockWaitMs: 5_000,
  });
  const active = async () =>
    (await storage.users.listMemberships(TENANT, { groupId: 'cld-1' }))
      .filter((m) => m.status === 'active')
      .map((m) => m.uid)
      .sort();
  return { tenant, handler: webhooks.groupUserDeleted, calls, reports, active };
}

it('a removal whose seat report outlasts the seats lock lease keeps the lock: the last report carries the real count', async () => {
  const storage = memoryAdapter();
  let answered!: () => void;
  const secondAnswered = new Promise<void>((resolve) => {
    answered = resolve;
  });
  let reached!: () => void;
  const firstReporting = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const app = await setup(storage, async (change) => {
    if (change.removed[0] !== 'usr-1') return;
    reached();
    // usr-1's billing call is slow: it answers once usr-2's removal has answered, or after 750 ms
    // (two and a half leases, within the three the webhook waits for a hook) when that removal
    // waits for the lock.
    await Promise.race([sleep(750), secondAnswered.then(() => sleep(50))]);
  });
  // On fake timers (Date and performance included), advanced 5 ms at a time: with a 300 ms lease
  // renewed every 100 ms, an event-loop stall of a little over 100 ms on a loaded machine (real
  // time passing between two renewals) made the lock read as lost at the write (503).
  vi.useFakeTimers();
  const first = remove(app.handler, app.tenant, 'usr-1');
  await settleOnFakeTime(firstReporting);
  const second = remove(app.handler, app.tenant, 'usr-2').finally(answered);
  const [a, b] = await settleOnFakeTime(Promise.all([first, second]));
  vi.useRealTimers();
  expect(a.status).toBe(200);
  expect(b.status).toBe(200);

  expect(await app.active()).toEqual(['usr-3']);
  // Each report counts the seats the writes before it left: the last one is the real count.
  expect(app.reports).toEqual([
    { removed: 'usr-1', activeSeats: 2 },
    { removed: 'usr-2', activeSeats: 1 },
  ]);
}, 20_000);

it('a removal that lost its seats lock during onSeatsChanged writes nothing (503); its retry reports the real count and writes', async () => {
  const inner = memoryAdapter();
  /** The renewals of the first seats-lock owner wait until `unstall` (the storage is slow to answer them). */
  let stalledOwner: string | null = null;
  let stalling = false;
  let unstall!: () => void;
  const stalled = new Promise<void>((resolve) => {
    unstall = resolve;
  });
  const storage: StorageAdapter = {
    ...inner,
    locks: {
      ...inner.locks,
      refresh: async (key, owner, ttlMs) => {
        if (stalling && owner.includes(':webhook-seats:') && (stalledOwner === null || stalledOwner === owner)) {
          stalledOwner = owner;
          await stalled;
        }
        return inner.locks.refresh(key, owner, ttlMs);
      },
    },
  };
  let second: Response | undefined;
  let app: Awaited<ReturnType<typeof setup>>;
  app = await setup(storage, async (change) => {
    if (change.removed[0] !== 'usr-1' || second !== undefined) return;
    // The lease (300 ms) lapses while the renewal is unanswered; usr-2's removal takes the lock,
    // counts usr-1 still active, reports and writes; then the renewal is refused.
    stalling = true;
    await sleep(400);
    second = await remove(app.handler, app.tenant, 'usr-2');
    unstall();
    await sleep(50);
  });

  const first = await remove(app.handler, app.tenant, 'usr-1');
  expect(second?.status).toBe(200);
  expect(first.status).toBe(503);
  // usr-1's removal wrote nothing: its membership and user are as they were.
  expect(await app.active()).toEqual(['usr-1', 'usr-3']);
  expect((await storage.users.get(TENANT, 'usr-1'))?.status).toBe('active');

  // Maestrano's retry: reported with the count usr-2's removal left, then written.
  expect((await remove(app.handler, app.tenant, 'usr-1')).status).toBe(200);
  expect(await app.active()).toEqual(['usr-3']);
  expect(app.reports.at(-1)).toEqual({ removed: 'usr-1', activeSeats: 1 });
  // The app's removal was asked again under the same key (idempotent), not as a new one.
  const removals = app.calls.filter((c) => c.startsWith('removeMembership:usr-1:'));
  expect(removals).toHaveLength(2);
  expect(removals[1]).toBe(removals[0]);
}, 20_000);
