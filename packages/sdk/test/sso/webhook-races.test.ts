// Account webhooks racing SSO logins of the same user or group, through `mno.handler` on
// loopback HTTP with real signed assertions. Provisioning hooks pause on a gate the test
// opens, and the storage's lock calls are observed (a refused take = someone waiting), so each
// interleaving is forced, not hoped for. A webhook Maestrano got a 200 for is never undone by
// a login that was in flight (PROTOCOL §5).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMaestrano, memoryAdapter, type StorageAdapter, StorageError, toNodeListener } from '@org/maestrano-sdk';
import { createTestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, describe, expect, it } from 'vitest';

const TENANT = 'races';
const idp = createTestIdp();

/** One call of `locks.acquire` or `locks.refresh`, as the storage answered it. */
interface LockEvent {
  op: 'acquire' | 'refresh';
  key: string;
  owner: string;
  ok: boolean;
}
/** The owners the SDK gives its lock runs: the account webhooks, and SSO logins (the user lock). */
const byWebhook = (e: LockEvent) => e.owner.includes(':webhook:');
const byLogin = (e: LockEvent) => e.owner.includes(':sso-user:');

/** `inner` with its lock calls recorded; `lockEvent` resolves at the first (past or future) match. */
function observeLocks(inner: StorageAdapter): { storage: StorageAdapter; events: LockEvent[]; lockEvent(match: (e: LockEvent) => boolean): Promise<LockEvent> } {
  const events: LockEvent[] = [];
  const watchers = new Set<() => void>();
  const record = (e: LockEvent) => {
    events.push(e);
    for (const watch of [...watchers]) watch();
  };
  const storage: StorageAdapter = {
    ...inner,
    locks: {
      ...inner.locks,
      acquire: async (key, owner, ttlMs) => {
        const ok = await inner.locks.acquire(key, owner, ttlMs);
        record({ op: 'acquire', key, owner, ok });
        return ok;
      },
      refresh: async (key, owner, ttlMs) => {
        const ok = await inner.locks.refresh(key, owner, ttlMs);
        record({ op: 'refresh', key, owner, ok });
        return ok;
      },
    },
  };
  const lockEvent = (match: (e: LockEvent) => boolean) =>
    new Promise<LockEvent>((resolve) => {
      const watch = () => {
        const found = events.find(match);
        if (!found) return;
        watchers.delete(watch);
        resolve(found);
      };
      watchers.add(watch);
      watch();
    });
  return { storage, events, lockEvent };
}

interface Gate {
  reached: Promise<void>;
  release(): void;
}

interface App {
  storage: StorageAdapter;
  calls: string[];
  /** Every lock take and renewal, in order. */
  lockEvents: LockEvent[];
  /** Resolves at the first lock event (already seen or to come) that matches. */
  lockEvent(match: (e: LockEvent) => boolean): Promise<LockEvent>;
  /** The next call of `hook` pauses until the gate is released. */
  pauseAt(hook: string): Gate;
  login(user: TestUser): Promise<number>;
  /** One signed response for `user`, to post (again) with `post`. */
  response(user: TestUser): string;
  /** Moves the clock of the SDK, its storage and the IdP `ms` ahead (Maestrano acting later). */
  later(ms: number): void;
  post(samlResponse: string): Promise<number>;
  webhook(path: string): Promise<number>;
  close(): Promise<void>;
}

let app: App | undefined;
/** Run (once each, in order) before a users.complete reaches storage. */
const beforeComplete: ((uid: string) => Promise<void>)[] = [];
/** How many upcoming users.upsertMembership calls fail (the database goes away mid-login). */
let failUpsertMembership = 0;
afterEach(async () => {
  failUpsertMembership = 0;
  await app?.close();
  app = undefined;
});

/**
 * `frozenClock`: the clock of the SDK, its storage and the IdP stands still (moved only by
 * `later`), so a lock lease ends when the test moves it past it, however slow the machine is.
 */
async function start(creationMode: 'real' | 'virtual' = 'real', extra: { provisioningClaimTtlMs?: number; frozenClock?: boolean } = {}): Promise<App> {
  let offsetMs = 0;
  const frozenAt = Date.now();
  const clock = () => new Date((extra.frozenClock ? frozenAt : Date.now()) + offsetMs);
  const observed = observeLocks(memoryAdapter({ clock }));
  const { events: lockEvents, lockEvent } = observed;
  const inner = observed.storage;
  const storage: StorageAdapter = {
    ...inner,
    users: {
      ...inner.users,
      complete: async (tenant, uid, owner, data) => {
        const before = beforeComplete.shift();
        if (before) await before(uid);
        return inner.users.complete(tenant, uid, owner, data);
      },
      upsertMembership: async (tenant, uid, groupId, role) => {
        if (failUpsertMembership > 0) {
          failUpsertMembership--;
          throw new StorageError('users.upsertMembership failed: connection refused', { adapterId: inner.id, operation: 'users.upsertMembership' });
        }
        return inner.users.upsertMembership(tenant, uid, groupId, role);
      },
    },
  };
  const calls: string[] = [];
  const gates = new Map<string, { hit: () => void; wait: Promise<void> }>();
  /** Every gate's release (close() opens them all, so a failed case does not hang). */
  const releases: (() => void)[] = [];
  /** Waits at the gate set for `hook`, if any; true when it waited. */
  const pause = async (hook: string) => {
    const gate = gates.get(hook);
    if (!gate) return false;
    gates.delete(hook);
    gate.hit();
    await gate.wait;
    return true;
  };
  let handler: (request: Request) => Promise<Response> = async () => new Response(null, { status: 503 });
  const server: Server = createServer(toNodeListener((request) => handler(request)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let seq = 0;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: url, apiId: 'app-races', apiKey: 'key-races-0123456789', sso: { creation_mode: creationMode } })],
    storage,
    clock,
    billing: { cancelRecurringBillsOnGroupDeleted: false },
    provisioning: {
      createCompany: async (group) => {
        calls.push(`createCompany:${group.uid}`);
        await pause('createCompany');
        return { id: `co-${group.uid}` };
      },
      createUser: async (user) => {
        calls.push(`createUser:${user.key}`);
        await pause('createUser');
        return { id: `app-${user.key}-${++seq}` };
      },
      addMembership: async (user, company, role) => {
        calls.push(`addMembership:${user.uid}:${company.groupId}:${role}`);
        await pause('addMembership');
      },
      removeMembership: async (user, company) => {
        calls.push(`removeMembership:${user.uid}:${company.groupId}`);
        await pause('removeMembership');
      },
      blockUser: async (user) => {
        calls.push(`blockUser:${user.uid}`);
      },
      cancelCompany: async (company) => {
        calls.push(`cancelCompany:${company.groupId}`);
      },
    },
    onLogin: async ({ user, company }) => {
      calls.push(`onLogin:${user.uid}:${company.groupId}`);
      if (await pause('onLogin')) calls.push(`onLogin-done:${user.uid}`);
      return Response.json({ ok: true });
    },
    sso: { allowIdpInitiated: true, ...(extra.provisioningClaimTtlMs ? { provisioningClaimTtlMs: extra.provisioningClaimTtlMs } : {}) },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;
  const acsUrl = `${url}/maestrano/auth/saml/consume/${TENANT}`;
  const response = (user: TestUser) => idp.response(user, { acsUrl, inResponseTo: null, now: clock() });
  const post = async (samlResponse: string) => {
    const res = await fetch(acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: samlResponse }), redirect: 'manual' });
    await res.arrayBuffer();
    return res.status;
  };
  return {
    storage,
    calls,
    lockEvents,
    lockEvent,
    pauseAt(hook) {
      let hit!: () => void;
      let release!: () => void;
      const reached = new Promise<void>((resolve) => {
        hit = resolve;
      });
      const wait = new Promise<void>((resolve) => {
        release = resolve;
      });
      gates.set(hook, { hit, wait });
      releases.push(release);
      return { reached, release };
    },
    login: (user) => post(response(user)),
    response,
    later(ms) {
      offsetMs += ms;
    },
    post,
    async webhook(path) {
      const res = await fetch(`${url}${path}/${TENANT}`, {
        method: 'DELETE',
        headers: { authorization: `Basic ${Buffer.from('app-races:key-races-0123456789').toString('base64')}` },
      });
      await res.arrayBuffer();
      return res.status;
    },
    close: () => {
      for (const release of releases) release();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

const member = (uid: string, groupUid: string, groupRole = 'Member'): TestUser => ({ uid, email: `${uid}@example.com`, groupUid, groupRole });

async function state(storage: StorageAdapter, uid: string, groupId: string) {
  const [membership] = await storage.users.listMemberships(TENANT, { uid, groupId });
  return { membership: membership?.status ?? null, user: (await storage.users.get(TENANT, uid))?.status ?? null };
}

/**
 * Starts `webhook` while the login waits at `gate`; lets the login go once the webhook either
 * answered or was seen waiting for a lock (a refused take); returns both answers and whether
 * the webhook had to wait.
 */
async function raceWebhookWithPausedLogin(a: App, login: Promise<number>, gate: Gate, path: string) {
  await gate.reached;
  const from = a.lockEvents.length;
  const webhook = a.webhook(path);
  const waiting = a.lockEvent((e) => a.lockEvents.indexOf(e) >= from && byWebhook(e) && e.op === 'acquire' && !e.ok);
  const first = await Promise.race([waiting.then(() => 'waiting' as const), webhook.then(() => 'answered' as const)]);
  gate.release();
  return { login: await login, webhook: await webhook, webhookWaited: first === 'waiting' };
}

/**
 * A removal of `uid` from `groupId` paused in `removeMembership` (holding the user's lock), a
 * login of that user started meanwhile and seen waiting for the lock, then the removal let go:
 * both answers.
 */
async function loginDuringRemoval(a: App, uid: string, groupId: string): Promise<{ removal: number; login: number }> {
  const gate = a.pauseAt('removeMembership');
  const removal = a.webhook(`/maestrano/account/groups/${groupId}/users/${uid}`);
  await gate.reached;
  const from = a.lockEvents.length;
  const login = a.login(member(uid, groupId));
  const waiting = a.lockEvent((e) => a.lockEvents.indexOf(e) >= from && byLogin(e) && e.op === 'acquire' && !e.ok);
  expect(await Promise.race([waiting.then(() => 'waiting'), login.then(() => 'answered')])).toBe('waiting');
  gate.release();
  return { removal: await removal, login: await login };
}

describe('a member removal racing a login of that user', () => {
  it("a new user's first login in flight: the removal waits for it, then removes and blocks (not undone)", async () => {
    app = await start();
    expect(await app.login(member('usr-0', 'cld-1'))).toBe(200);
    const gate = app.pauseAt('createUser');
    const answers = await raceWebhookWithPausedLogin(app, app.login(member('usr-1', 'cld-1')), gate, '/maestrano/account/groups/cld-1/users/usr-1');
    expect(answers).toEqual({ login: 200, webhook: 200, webhookWaited: true });
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });
    // The app heard of the removal after the login it undoes (its session ended by the hooks).
    expect(app.calls.slice(app.calls.indexOf('createUser:usr-1'))).toEqual([
      'createUser:usr-1',
      'addMembership:usr-1:cld-1:Member',
      'onLogin:usr-1:cld-1',
      'removeMembership:usr-1:cld-1',
      'blockUser:usr-1',
    ]);
  });

  it('a returning user whose role changes: the membership the login writes is the one removed', async () => {
    app = await start();
    expect(await app.login(member('usr-1', 'cld-1', 'Member'))).toBe(200);
    const gate = app.pauseAt('addMembership');
    const answers = await raceWebhookWithPausedLogin(app, app.login(member('usr-1', 'cld-1', 'Admin')), gate, '/maestrano/account/groups/cld-1/users/usr-1');
    expect(answers).toEqual({ login: 200, webhook: 200, webhookWaited: true });
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });
  });

  it('a returning user joining another group: removed from it after the login, active nowhere else', async () => {
    app = await start();
    expect(await app.login(member('usr-1', 'cld-1'))).toBe(200);
    expect(await app.webhook('/maestrano/account/groups/cld-1/users/usr-1')).toBe(200);
    const gate = app.pauseAt('addMembership');
    const answers = await raceWebhookWithPausedLogin(app, app.login(member('usr-1', 'cld-2')), gate, '/maestrano/account/groups/cld-2/users/usr-1');
    expect(answers).toEqual({ login: 200, webhook: 200, webhookWaited: true });
    expect(await state(app.storage, 'usr-1', 'cld-2')).toEqual({ membership: 'removed', user: 'blocked' });
  });

  it('an onLogin that outlasts the lock lease keeps the lock (renewed): the removal still waits for it', async () => {
    // On a clock that stands still unless moved: the lease runs out only when the test moves the
    // clock past it, never because a loaded machine delayed a renewal while the login held it.
    app = await start('real', { provisioningClaimTtlMs: 1_000, frozenClock: true });
    expect(await app.login(member('usr-0', 'cld-1'))).toBe(200);
    const gate = app.pauseAt('onLogin');
    const login = app.login(member('usr-1', 'cld-1'));
    await gate.reached;
    // The login took the user lock (its first lease: 1 s of the clock from the take).
    const lockKey = `webhook:user:${TENANT}:usr-1`;
    await app.lockEvent((e) => byLogin(e) && e.key === lockKey && e.op === 'acquire' && e.ok);
    // 0.6 s later (the first lease still live), a renewal: its lease runs 1 s from then.
    app.later(600);
    const renewed = app.lockEvents.length;
    await expect.poll(() => app!.lockEvents.slice(renewed).some((e) => byLogin(e) && e.key === lockKey && e.op === 'refresh' && e.ok)).toBe(true);
    // 1.2 s after the take: the first lease is over (without that renewal the lock is free now).
    app.later(600);
    const from = app.lockEvents.length;
    const webhook = app.webhook('/maestrano/account/groups/cld-1/users/usr-1');
    const waiting = app.lockEvent((e) => app!.lockEvents.indexOf(e) >= from && byWebhook(e) && e.key === lockKey && !e.ok);
    // The removal must wait for the login (still in onLogin) rather than take the lock.
    expect(await Promise.race([waiting.then(() => 'waiting'), webhook.then(() => 'answered')])).toBe('waiting');
    expect(app.lockEvents.some((e) => byLogin(e) && e.key === lockKey && e.op === 'refresh' && e.ok)).toBe(true);
    gate.release();
    expect(await webhook).toBe(200);
    expect(await login).toBe(200);
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });
    expect(app.calls.slice(-4)).toEqual(['onLogin:usr-1:cld-1', 'onLogin-done:usr-1', 'removeMembership:usr-1:cld-1', 'blockUser:usr-1']);
  });

  it('a login arriving while the removal runs is refused once the removal is done (no session after the hooks ended them)', async () => {
    app = await start();
    expect(await app.login(member('usr-1', 'cld-1'))).toBe(200);
    expect(await loginDuringRemoval(app, 'usr-1', 'cld-1')).toEqual({ removal: 200, login: 403 });
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });
    expect(app.calls.filter((c) => c.startsWith('onLogin'))).toHaveLength(1);
  });

  it('a sign-in after the removal is done is Maestrano adding the user back: active again, and a later removal removes again', async () => {
    app = await start();
    expect(await app.login(member('usr-1', 'cld-1'))).toBe(200);
    expect(await app.webhook('/maestrano/account/groups/cld-1/users/usr-1')).toBe(200);
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });
    // An assertion issued after the removal (IssueInstant is in whole seconds: a later second).
    app.later(1_000);
    expect(await app.login(member('usr-1', 'cld-1'))).toBe(200);
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'active', user: 'active' });
    expect(await app.webhook('/maestrano/account/groups/cld-1/users/usr-1')).toBe(200);
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });
  });
});

describe('a login that gave up waiting for a removal holding the user lock (503)', () => {
  it('keeps its assertion id: the same response posted after the removal is a replay, not the user let back in', async () => {
    app = await start('real', { provisioningClaimTtlMs: 1_000 });
    expect(await app.login(member('usr-1', 'cld-1'))).toBe(200);
    const gate = app.pauseAt('removeMembership');
    const removal = app.webhook('/maestrano/account/groups/cld-1/users/usr-1');
    await gate.reached;
    const samlResponse = app.response(member('usr-1', 'cld-1'));
    // The removal holds the user lock (renewed) for longer than the login waits for it.
    expect(await app.post(samlResponse)).toBe(503);
    gate.release();
    expect(await removal).toBe(200);
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });

    // The login that raced the removal must not succeed on a retry of the same response.
    expect(await app.post(samlResponse)).toBe(400);
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });
    expect(app.calls.filter((c) => c.startsWith('onLogin'))).toHaveLength(1);
  });
});

describe('a member removal after a login whose membership write failed', () => {
  it('the app accepted the membership (addMembership), storage did not record it: the removal still ends access and blocks', async () => {
    app = await start();
    failUpsertMembership = 1;
    expect(await app.login(member('usr-1', 'cld-1'))).toBe(503);
    // The app has the membership; the SDK has the user and no membership.
    expect(app.calls).toContain('addMembership:usr-1:cld-1:Member');
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: null, user: 'active' });

    expect(await app.webhook('/maestrano/account/groups/cld-1/users/usr-1')).toBe(200);
    expect(app.calls.slice(-2)).toEqual(['removeMembership:usr-1:cld-1', 'blockUser:usr-1']);
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });

    // A replay finds the removal recorded and changes nothing.
    const heard = app.calls.length;
    expect(await app.webhook('/maestrano/account/groups/cld-1/users/usr-1')).toBe(200);
    expect(app.calls).toHaveLength(heard);
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });
    // Maestrano adding the user back (an assertion issued in a later second than the removal): let in again.
    app.later(1_000);
    expect(await app.login(member('usr-1', 'cld-1'))).toBe(200);
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'active', user: 'active' });
  });

  it('a login waiting for the user lock while that removal runs is refused (403), as for a recorded membership', async () => {
    app = await start();
    failUpsertMembership = 1;
    expect(await app.login(member('usr-1', 'cld-1'))).toBe(503);
    expect(await loginDuringRemoval(app, 'usr-1', 'cld-1')).toEqual({ removal: 200, login: 403 });
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });
    expect(app.calls.filter((c) => c.startsWith('onLogin'))).toEqual([]);
  });

  it('a user with another live membership is not blocked', async () => {
    app = await start();
    expect(await app.login(member('usr-1', 'cld-1'))).toBe(200);
    failUpsertMembership = 1;
    expect(await app.login(member('usr-1', 'cld-2'))).toBe(503);
    expect(await app.webhook('/maestrano/account/groups/cld-2/users/usr-1')).toBe(200);
    expect(app.calls.at(-1)).toBe('removeMembership:usr-1:cld-2');
    expect(await state(app.storage, 'usr-1', 'cld-1')).toEqual({ membership: 'active', user: 'active' });
  });
});

describe('a group deletion racing a login into that group', () => {
  it('real mode: the login of a second user in flight is refused once the group is cancelled, and grants nothing', async () => {
    app = await start();
    expect(await app.login(member('usr-0', 'cld-1'))).toBe(200);
    const gate = app.pauseAt('createUser');
    const answers = await raceWebhookWithPausedLogin(app, app.login(member('usr-1', 'cld-1')), gate, '/maestrano/account/groups/cld-1');
    // The deletion (group lock only) runs to its end while the login is paused.
    expect(answers).toEqual({ login: 403, webhook: 200, webhookWaited: false });
    expect((await app.storage.groups.get(TENANT, 'cld-1'))?.status).toBe('cancelled');
    expect((await state(app.storage, 'usr-1', 'cld-1')).membership).not.toBe('active');
    expect(app.calls).not.toContain('onLogin:usr-1:cld-1');
    expect(app.calls).not.toContain('addMembership:usr-1:cld-1:Member');
  });

  it('virtual mode: no user of the deleted group is left active, the late one included', async () => {
    app = await start('virtual');
    expect(await app.login(member('usr-0', 'cld-1'))).toBe(200);
    const gate = app.pauseAt('addMembership');
    const login = app.login(member('usr-1', 'cld-1'));
    await gate.reached;
    // The deletion runs to its end while the membership of usr-1 is being added.
    expect(await app.webhook('/maestrano/account/groups/cld-1')).toBe(200);
    gate.release();
    expect(await login).toBe(403);
    expect(await state(app.storage, 'usr-0.cld-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });
    // The late user was granted its membership in the app: withdrawn there too, and blocked.
    expect(await state(app.storage, 'usr-1.cld-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });
    expect(app.calls.slice(app.calls.indexOf('addMembership:usr-1.cld-1:cld-1:Member'))).toEqual(
      expect.arrayContaining(['removeMembership:usr-1.cld-1:cld-1', 'blockUser:usr-1.cld-1']),
    );
    expect(app.calls).not.toContain('onLogin:usr-1.cld-1:cld-1');
  });
});

describe('a new user is recorded just before its membership: the account webhooks still see it', () => {
  it('virtual mode: a group deletion landing between the last cancel check and users.complete leaves no user active (blockUser heard)', async () => {
    app = await start('virtual');
    expect(await app.login(member('usr-0', 'cld-1'))).toBe(200);
    let webhookStatus = 0;
    beforeComplete.push(async () => {
      webhookStatus = await app!.webhook('/maestrano/account/groups/cld-1');
    });
    const login = await app.login(member('usr-1', 'cld-1'));
    expect(webhookStatus).toBe(200);
    expect((await app.storage.groups.get(TENANT, 'cld-1'))?.status).toBe('cancelled');
    // As for every other member of a deleted group in virtual mode: blocked, and the app told so.
    expect([200, 403]).toContain(login);
    expect(await state(app.storage, 'usr-1.cld-1', 'cld-1')).toEqual({ membership: 'removed', user: 'blocked' });
    expect(app.calls).toContain('blockUser:usr-1.cld-1');
  });
});
