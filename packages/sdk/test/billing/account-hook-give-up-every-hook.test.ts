// Every hook the account webhooks call is given up on after three lock leases when it never
// settles (it ignores its ctx.signal): group deletion (real and virtual mode), member removal
// (removeMembership, blockUser, onSeatsChanged, an unrecorded membership's report), virtual
// mode included. Each answers 500 with nothing written and no lock left behind; the hung call
// settling afterwards writes nothing either; Maestrano's retry calls the same hook again under
// the same idempotency key and completes.
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import type { Tenant } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { type AccountWebhookHooks, createAccountWebhooks } from '../../src/webhooks/account.js';
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

type Hook = keyof AccountWebhookHooks;
interface Case {
  name: string;
  mode: 'real' | 'virtual';
  hook: Hook;
  hooks: Hook[];
  seed(storage: StorageAdapter): Promise<void>;
  call: 'group' | { uid: string };
}

const cases: Case[] = [
  {
    name: 'group deletion, cancelCompany (real mode)',
    mode: 'real',
    hook: 'cancelCompany',
    hooks: ['cancelCompany'],
    seed: async (s) => {
      await provisionGroup(s, TENANT, 'cld-1');
      await provisionUser(s, TENANT, 'usr-1', ['cld-1']);
    },
    call: 'group',
  },
  {
    name: 'group deletion, cancelCompany (virtual mode)',
    mode: 'virtual',
    hook: 'cancelCompany',
    hooks: ['cancelCompany', 'blockUser'],
    seed: async (s) => {
      await provisionGroup(s, TENANT, 'cld-1');
      await provisionUser(s, TENANT, 'usr-1.cld-1', ['cld-1']);
    },
    call: 'group',
  },
  {
    name: 'member removal, removeMembership (real mode)',
    mode: 'real',
    hook: 'removeMembership',
    hooks: ['removeMembership', 'blockUser', 'onSeatsChanged'],
    seed: async (s) => {
      await provisionGroup(s, TENANT, 'cld-1');
      await provisionUser(s, TENANT, 'usr-1', ['cld-1']);
      await provisionUser(s, TENANT, 'usr-2', ['cld-1']);
    },
    call: { uid: 'usr-1' },
  },
  {
    name: 'member removal, blockUser (real mode, last group)',
    mode: 'real',
    hook: 'blockUser',
    hooks: ['removeMembership', 'blockUser', 'onSeatsChanged'],
    seed: async (s) => {
      await provisionGroup(s, TENANT, 'cld-1');
      await provisionUser(s, TENANT, 'usr-1', ['cld-1']);
    },
    call: { uid: 'usr-1' },
  },
  {
    name: 'member removal, blockUser (virtual mode)',
    mode: 'virtual',
    hook: 'blockUser',
    hooks: ['removeMembership', 'blockUser', 'onSeatsChanged'],
    seed: async (s) => {
      await provisionGroup(s, TENANT, 'cld-1');
      await provisionUser(s, TENANT, 'usr-1.cld-1', ['cld-1']);
    },
    call: { uid: 'usr-1' },
  },
  {
    name: 'member removal, onSeatsChanged (virtual mode)',
    mode: 'virtual',
    hook: 'onSeatsChanged',
    hooks: ['removeMembership', 'blockUser', 'onSeatsChanged'],
    seed: async (s) => {
      await provisionGroup(s, TENANT, 'cld-1');
      await provisionUser(s, TENANT, 'usr-1.cld-1', ['cld-1']);
      await provisionUser(s, TENANT, 'usr-2.cld-1', ['cld-1']);
    },
    call: { uid: 'usr-1' },
  },
  {
    name: 'member removal of an unrecorded membership, onSeatsChanged (real mode)',
    mode: 'real',
    hook: 'onSeatsChanged',
    hooks: ['removeMembership', 'blockUser', 'onSeatsChanged'],
    seed: async (s) => {
      await provisionGroup(s, TENANT, 'cld-1');
      await provisionGroup(s, TENANT, 'cld-2');
      await provisionUser(s, TENANT, 'usr-1', ['cld-2']);
      await provisionUser(s, TENANT, 'usr-2', ['cld-1']);
    },
    call: { uid: 'usr-1' },
  },
];

async function snapshot(storage: StorageAdapter) {
  const groups = await Promise.all(['cld-1', 'cld-2'].map((g) => storage.groups.get(TENANT, g)));
  const memberships = await storage.users.listMemberships(TENANT, {});
  const users = await Promise.all(memberships.map((m) => storage.users.get(TENANT, m.uid)));
  return {
    groups: groups.map((g) => g && { status: g.status }),
    memberships: memberships.map((m) => ({ uid: m.uid, groupId: m.groupId, status: m.status, role: m.role, updatedAt: m.updatedAt.getTime() })),
    users: users.map((u) => u && { uid: u.uid, status: u.status }),
  };
}

for (const c of cases) {
  it(`${c.name}: given up (500, nothing written, no lock left); the late settle writes nothing; the retry completes`, async () => {
    // On fake time: with a 100 ms lease (renewed every 50 ms), the seats lock reads as lost after
    // 75 ms without a confirmed renewal, and a stall that long on a loaded machine made the retry 503.
    vi.useFakeTimers();
    const storage = memoryAdapter();
    await c.seed(storage);
    const tenant: Tenant = makeTenant(api, { creationMode: c.mode });
    const { runtime, logger } = makeRuntime(storage, [tenant]);
    let hang = true;
    let settleLate: (() => void) | undefined;
    const calls: { hook: Hook; key: string }[] = [];
    const hooks: AccountWebhookHooks = {};
    for (const name of c.hooks) {
      hooks[name] = ((...args: unknown[]) => {
        const ctx = args.at(-1) as { idempotencyKey: string };
        calls.push({ hook: name, key: ctx.idempotencyKey });
        if (name === c.hook && hang) {
          return new Promise<void>((resolve) => {
            settleLate = resolve;
          });
        }
      }) as never;
    }
    const webhooks = createAccountWebhooks({
      storage,
      logger,
      hooks,
      account: () => {
        throw new Error('no account API call expected');
      },
      cancelRecurringBills: false,
      instanceId: runtime.instanceId,
      lockTtlMs: 100,
    });
    const deliver = () => {
      const headers = new Headers({ authorization: basicAuth(tenant.api.id, tenant.api.key) });
      if (c.call === 'group') {
        const request = new Request(`http://127.0.0.1/maestrano/account/groups/cld-1/${tenant.name}`, { method: 'DELETE', headers });
        return webhooks.groupDeleted({ request, tenant, params: { id: 'cld-1' } });
      }
      const { uid } = c.call;
      const request = new Request(`http://127.0.0.1/maestrano/account/groups/cld-1/users/${uid}/${tenant.name}`, { method: 'DELETE', headers });
      return webhooks.groupUserDeleted({ request, tenant, params: { group_id: 'cld-1', id: uid } });
    };
    const before = await snapshot(storage);
    expect((await settleOnFakeTime(deliver())).status).toBe(500);
    expect(await snapshot(storage)).toEqual(before);
    const hung = calls.filter((call) => call.hook === c.hook);
    expect(hung).toHaveLength(1);
    // The hung call settles now: nothing is written on its behalf.
    settleLate?.();
    await vi.advanceTimersByTimeAsync(50);
    expect(await snapshot(storage)).toEqual(before);
    // No lock is left behind (held ones would have an owner other than this probe).
    for (const key of ['webhook:group:maestrano-uat:cld-1', 'webhook:user:maestrano-uat:usr-1', 'webhook:user:maestrano-uat:usr-1.cld-1', 'seats:maestrano-uat:cld-1']) {
      expect(await storage.locks.acquire(key, 'probe', 1_000)).toBe(true);
      await storage.locks.release(key, 'probe');
    }
    hang = false;
    expect((await settleOnFakeTime(deliver())).status).toBe(200);
    const again = calls.filter((call) => call.hook === c.hook);
    expect(again).toHaveLength(2);
    expect(again[1]?.key).toBe(hung[0]?.key);
    const after = await snapshot(storage);
    if (c.call === 'group') expect(after.groups[0]?.status).toBe('cancelled');
    else expect(after.memberships.find((m) => m.groupId === 'cld-1' && m.uid.startsWith('usr-1'))?.status).toBe('removed');
  }, 10_000);
}
