// A member removal decides by when Maestrano issued the assertion, not by when the login
// request began: a signed response issued before the removal (still valid for minutes, or
// given back to the browser by a login that failed) must not let the removed member back in.
// Only an assertion whose `IssueInstant` is at or after the time the removal was recorded
// re-adds the user. Through `mno.handler` on loopback HTTP, with real signed responses and the
// real removal webhook; the SDK, its storage and the test IdP share one clock the test moves.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMaestrano, memoryAdapter, type StorageAdapter, StorageError, toNodeListener } from '@org/maestrano-sdk';
import { createTestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, describe, expect, it } from 'vitest';

const TENANT = 'stale';
/** `sso.clockSkewMs`'s default. */
const SKEW_MS = 180_000;
const idp = createTestIdp();
/** A whole second, like the `IssueInstant` the IdP writes. */
const START = Date.UTC(2026, 0, 5, 10, 0, 0);

interface App {
  storage: StorageAdapter;
  calls: string[];
  /** Makes the next `n` calls of `onLogin` throw (the app's session store down: 500). */
  failOnLogin(n: number): void;
  /** Makes the next `n` calls of the named provisioning hook throw (the app's database down: 500). */
  failHook(hook: 'createUser' | 'createCompany', n: number): void;
  /** Makes the next `n` calls of `users.setMembershipStatus` fail (the database down between two writes). */
  failMembershipStatus(n: number): void;
  /** The `activeSeats` of every `onSeatsChanged` report, in order. */
  seats: number[];
  /** Sets the shared clock (SDK, storage, IdP) to `START + ms`. */
  at(ms: number): void;
  /** A signed response for `user`, issued now (or at `START + issuedMs`). */
  response(user: TestUser, options?: { issuedMs?: number; mutateUnsigned?: (xml: string) => string }): string;
  post(samlResponse: string): Promise<{ status: number; error: unknown }>;
  remove(uid: string, groupId: string): Promise<number>;
  close(): Promise<void>;
}

let app: App | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(): Promise<App> {
  let nowMs = START;
  const clock = () => new Date(nowMs);
  const inner = memoryAdapter({ clock });
  let statusFailures = 0;
  // `users.setMembershipStatus` fails while `statusFailures` lasts; everything else as stored.
  const storage: StorageAdapter = {
    ...inner,
    users: {
      ...inner.users,
      setMembershipStatus: (...args) => {
        if (statusFailures > 0) {
          statusFailures--;
          return Promise.reject(new StorageError('users.setMembershipStatus failed: connection refused', { adapterId: inner.id, operation: 'users.setMembershipStatus' }));
        }
        return inner.users.setMembershipStatus(...args);
      },
    },
  };
  const calls: string[] = [];
  const seats: number[] = [];
  let onLoginFailures = 0;
  const hookFailures = { createUser: 0, createCompany: 0 };
  const hookCall = (hook: keyof typeof hookFailures) => {
    calls.push(hook);
    if (hookFailures[hook] > 0) {
      hookFailures[hook]--;
      throw new Error(`${hook}: app database unavailable`);
    }
  };
  let handler: (request: Request) => Promise<Response> = async () => new Response(null, { status: 503 });
  const server: Server = createServer(toNodeListener((request) => handler(request)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: url, apiId: 'app-stale', apiKey: 'key-stale-0123456789' })],
    storage,
    clock,
    billing: { cancelRecurringBillsOnGroupDeleted: false },
    provisioning: {
      createCompany: (group) => {
        hookCall('createCompany');
        return { id: `co-${group.uid}` };
      },
      createUser: (user) => {
        hookCall('createUser');
        return { id: `app-${user.key}` };
      },
      addMembership: (user, company, role) => {
        calls.push(`addMembership:${user.uid}:${company.groupId}:${role}`);
      },
      removeMembership: (user, company) => {
        calls.push(`removeMembership:${user.uid}:${company.groupId}`);
      },
      blockUser: (user) => {
        calls.push(`blockUser:${user.uid}`);
      },
      onSeatsChanged: (_company, change) => {
        seats.push(change.activeSeats);
      },
    },
    onLogin: ({ user, company }) => {
      if (onLoginFailures > 0) {
        onLoginFailures--;
        throw new Error('session store unavailable');
      }
      calls.push(`onLogin:${user.uid}:${company.groupId}`);
      return Response.json({ ok: true });
    },
    sso: { allowIdpInitiated: true },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;
  const acsUrl = `${url}/maestrano/auth/saml/consume/${TENANT}`;
  return {
    storage,
    calls,
    seats,
    failMembershipStatus: (n) => {
      statusFailures = n;
    },
    failOnLogin: (n) => {
      onLoginFailures = n;
    },
    failHook: (hook, n) => {
      hookFailures[hook] = n;
    },
    at: (ms) => {
      nowMs = START + ms;
    },
    response: (user, o = {}) =>
      idp.response(user, {
        acsUrl,
        inResponseTo: null,
        now: o.issuedMs === undefined ? clock() : new Date(START + o.issuedMs),
        ...(o.mutateUnsigned ? { mutateUnsigned: o.mutateUnsigned } : {}),
      }),
    post: async (samlResponse) => {
      const res = await fetch(acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: samlResponse }), redirect: 'manual' });
      const body = (await res.json().catch(() => ({}))) as { error?: unknown };
      return { status: res.status, error: body.error };
    },
    remove: async (uid, groupId) => {
      const res = await fetch(`${url}/maestrano/account/groups/${groupId}/users/${uid}/${TENANT}`, {
        method: 'DELETE',
        headers: { authorization: `Basic ${Buffer.from('app-stale:key-stale-0123456789').toString('base64')}` },
      });
      await res.arrayBuffer();
      return res.status;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const alice: TestUser = { uid: 'usr-alice', email: 'alice@example.com', groupUid: 'cld-1', groupRole: 'Member' };

async function state(a: App) {
  const [membership] = await a.storage.users.listMemberships(TENANT, { uid: alice.uid, groupId: alice.groupUid });
  return { membership: membership?.status ?? null, user: (await a.storage.users.get(TENANT, alice.uid))?.status ?? null };
}

/** Alice signed in once, then removed from her group by Maestrano at `START + removedMs`. */
async function removedMember(removedMs: number): Promise<App> {
  const a = await start();
  expect((await a.post(a.response(alice))).status).toBe(200);
  a.at(removedMs);
  expect(await a.remove(alice.uid, alice.groupUid)).toBe(200);
  expect(await state(a)).toEqual({ membership: 'removed', user: 'blocked' });
  return a;
}

describe('a response issued before a member removal', () => {
  it('given back by a login that failed (500), then posted again after the removal: refused (403), the removal stands', async () => {
    app = await start();
    expect((await app.post(app.response(alice))).status).toBe(200);

    // A second sign-in fails in the app (500): its assertion id is given back to the browser.
    app.at(10_000);
    const samlResponse = app.response(alice);
    app.failOnLogin(1);
    expect((await app.post(samlResponse)).status).toBe(500);

    // Maestrano removes her from the group; she reloads the page (the same response, still valid).
    app.at(20_000);
    expect(await app.remove(alice.uid, alice.groupUid)).toBe(200);
    app.at(30_000);
    expect(await app.post(samlResponse)).toEqual({ status: 403, error: 'provisioning_failed' });
    expect(await state(app)).toEqual({ membership: 'removed', user: 'blocked' });
    expect(app.calls.filter((c) => c.startsWith('onLogin'))).toHaveLength(1);
    // The refusal keeps the id: the same response stays refused.
    expect(await app.post(samlResponse)).toEqual({ status: 400, error: 'replay' });
  });

  it("a new user's first login failed in createUser (id given back), then removed: the re-post is refused (403), nothing is created", async () => {
    app = await start();
    const samlResponse = app.response(alice);
    app.failHook('createUser', 1);
    expect((await app.post(samlResponse)).status).toBe(500);
    expect(await state(app)).toEqual({ membership: null, user: null });

    // Maestrano removes her before she retries: the SDK never recorded her, but the removal
    // must still stand against the response issued before it.
    app.at(20_000);
    expect(await app.remove(alice.uid, alice.groupUid)).toBe(200);
    app.at(30_000);
    expect(await app.post(samlResponse)).toEqual({ status: 403, error: 'provisioning_failed' });
    expect(await state(app)).toEqual({ membership: 'removed', user: null });
    // Refused before the app was asked to create her again.
    expect(app.calls.filter((c) => c === 'createUser')).toHaveLength(1);
    expect(app.calls.filter((c) => c.startsWith('addMembership') || c.startsWith('onLogin'))).toEqual([]);
    // The removal reported no seat change and asked nothing of the app: it never knew her.
    expect(app.calls.filter((c) => c.startsWith('removeMembership') || c.startsWith('blockUser'))).toEqual([]);
    // A repeated removal delivery changes nothing.
    expect(await app.remove(alice.uid, alice.groupUid)).toBe(200);
    expect(await state(app)).toEqual({ membership: 'removed', user: null });

    // Maestrano adds her back: a response issued after the removal signs her in.
    app.at(40_000);
    expect((await app.post(app.response(alice))).status).toBe(200);
    expect(await state(app)).toEqual({ membership: 'active', user: 'active' });
    expect(app.calls.filter((c) => c.startsWith('onLogin'))).toEqual([`onLogin:${alice.uid}:${alice.groupUid}`]);
  });

  it("a known user's first login into a new group failed in createCompany, then removed from it: the re-post is refused (403), no company is created", async () => {
    app = await start();
    const other: TestUser = { ...alice, groupUid: 'cld-2' };
    expect((await app.post(app.response(other))).status).toBe(200);

    app.at(10_000);
    const samlResponse = app.response(alice);
    app.failHook('createCompany', 1);
    expect((await app.post(samlResponse)).status).toBe(500);
    expect(await app.storage.groups.get(TENANT, alice.groupUid)).toBeNull();

    app.at(20_000);
    expect(await app.remove(alice.uid, alice.groupUid)).toBe(200);
    app.at(30_000);
    expect(await app.post(samlResponse)).toEqual({ status: 403, error: 'provisioning_failed' });
    expect(await app.storage.groups.get(TENANT, alice.groupUid)).toBeNull();
    expect(app.calls.filter((c) => c === 'createCompany')).toHaveLength(2);
    expect(await state(app)).toEqual({ membership: 'removed', user: 'active' });
    // Her other group is untouched.
    const [kept] = await app.storage.users.listMemberships(TENANT, { uid: alice.uid, groupId: 'cld-2' });
    expect(kept?.status).toBe('active');
  });

  it('issued after a first removal, its login failed, then removed again: the re-post is refused (403), though the second removal found the membership removed', async () => {
    app = await start();
    app.failHook('createUser', 1);
    expect((await app.post(app.response(alice))).status).toBe(500);
    app.at(20_000);
    expect(await app.remove(alice.uid, alice.groupUid)).toBe(200);

    // Maestrano adds her back; her sign-in fails in the app (500, the response given back).
    app.at(40_000);
    const readded = app.response(alice);
    app.failHook('createUser', 1);
    expect((await app.post(readded)).status).toBe(500);
    // Maestrano removes her again: the SDK still holds the first removal, as it was.
    app.at(60_000);
    expect(await app.remove(alice.uid, alice.groupUid)).toBe(200);
    app.at(70_000);
    expect(await app.post(readded)).toEqual({ status: 403, error: 'provisioning_failed' });
    expect(await state(app)).toEqual({ membership: 'removed', user: null });
    expect(app.calls.filter((c) => c.startsWith('addMembership') || c.startsWith('onLogin'))).toEqual([]);

    // Added back once more: a response issued after the second removal signs her in.
    app.at(80_000);
    expect((await app.post(app.response(alice))).status).toBe(200);
    expect(await state(app)).toEqual({ membership: 'active', user: 'active' });
  });

  it('first posted after the removal (within its validity): refused (403)', async () => {
    app = await removedMember(20_000);
    app.at(60_000);
    expect(await app.post(app.response(alice, { issuedMs: 15_000 }))).toEqual({ status: 403, error: 'provisioning_failed' });
    expect(await state(app)).toEqual({ membership: 'removed', user: 'blocked' });
    expect(app.calls.filter((c) => c.startsWith('addMembership'))).toHaveLength(1);
  });

  it('given back by a failed first login, then the removal fails between its two writes (500): the re-post is still refused before the retry', async () => {
    app = await start();
    const samlResponse = app.response(alice);
    app.failHook('createUser', 1);
    expect((await app.post(samlResponse)).status).toBe(500);

    // The removal records the membership she never had, then storage fails before it is
    // marked removed: Maestrano retries later. Meanwhile she reloads the page.
    app.at(20_000);
    app.failMembershipStatus(1);
    expect(await app.remove(alice.uid, alice.groupUid)).toBe(500);
    app.at(30_000);
    expect(await app.post(samlResponse)).toEqual({ status: 403, error: 'provisioning_failed' });
    expect(app.calls.filter((c) => c.startsWith('addMembership') || c.startsWith('onLogin'))).toEqual([]);

    // Maestrano's retry completes the removal; a response issued after it signs her in.
    expect(await app.remove(alice.uid, alice.groupUid)).toBe(200);
    expect(await state(app)).toEqual({ membership: 'removed', user: null });
    app.at(40_000);
    expect((await app.post(app.response(alice))).status).toBe(200);
    expect(await state(app)).toEqual({ membership: 'active', user: 'active' });
  });

  it('a seat reported while such a removal is half-written does not count the member the app never had', async () => {
    app = await start();
    const bob: TestUser = { uid: 'usr-bob', email: 'bob@example.com', groupUid: alice.groupUid, groupRole: 'Member' };
    app.failHook('createUser', 1);
    expect((await app.post(app.response(alice))).status).toBe(500);
    app.at(20_000);
    app.failMembershipStatus(1);
    expect(await app.remove(alice.uid, alice.groupUid)).toBe(500);

    // Bob joins before Maestrano retries the removal: one seat (his), not two.
    app.at(30_000);
    expect((await app.post(app.response(bob))).status).toBe(200);
    expect(await app.remove(alice.uid, alice.groupUid)).toBe(200);
    expect(app.seats).toEqual([1]);
    expect(await app.storage.users.listMemberships(TENANT, { groupId: alice.groupUid, status: 'active' })).toMatchObject([{ uid: bob.uid }]);
  });
});

describe('an assertion issued after the removal: Maestrano added the user back', () => {
  it('issued at or after the removal: the member is active again', async () => {
    app = await removedMember(20_000);
    // The IdP writes whole seconds: a response issued at the removal's very second.
    app.at(20_400);
    expect((await app.post(app.response(alice))).status).toBe(200);
    expect(await state(app)).toEqual({ membership: 'active', user: 'active' });
    expect(app.calls.filter((c) => c.startsWith('onLogin'))).toHaveLength(2);
  });

  it('issued in the second of a removal made during that second: refused (it reads as before), and the next second succeeds', async () => {
    app = await removedMember(20_500);
    // Issued at 20.9 s, written 20 s: it cannot be told from a response issued before the removal.
    app.at(20_900);
    expect(await app.post(app.response(alice))).toEqual({ status: 403, error: 'provisioning_failed' });
    expect(await state(app)).toEqual({ membership: 'removed', user: 'blocked' });

    app.at(21_000);
    expect((await app.post(app.response(alice))).status).toBe(200);
    expect(await state(app)).toEqual({ membership: 'active', user: 'active' });
  });

  it('issued by an IdP whose clock is behind ours: refused until its clock passes the removal', async () => {
    app = await removedMember(20_000);
    // Our clock at 25 s, the IdP's 10 s behind: its response says 15 s.
    app.at(25_000);
    expect(await app.post(app.response(alice, { issuedMs: 15_000 }))).toEqual({ status: 403, error: 'provisioning_failed' });
    app.at(30_000);
    expect((await app.post(app.response(alice, { issuedMs: 20_000 }))).status).toBe(200);
    expect(await state(app)).toEqual({ membership: 'active', user: 'active' });
  });
});

describe("the assertion's IssueInstant", () => {
  it('is required: an assertion without one is malformed', async () => {
    app = await start();
    const samlResponse = app.response(alice, { mutateUnsigned: (xml) => xml.replace(/ IssueInstant="[^"]*"/, '') });
    expect(await app.post(samlResponse)).toEqual({ status: 400, error: 'malformed' });
    expect(await state(app)).toEqual({ membership: null, user: null });
  });

  it('more than the clock skew in the future is not valid yet', async () => {
    app = await start();
    const future = (xml: string) => xml.replace(/(<saml:Assertion [^>]*IssueInstant=")[^"]*"/, `$1${new Date(START + SKEW_MS + 1_000).toISOString().slice(0, 19)}Z"`);
    expect(await app.post(app.response(alice, { mutateUnsigned: future }))).toEqual({ status: 400, error: 'not_yet_valid' });
    const edge = (xml: string) => xml.replace(/(<saml:Assertion [^>]*IssueInstant=")[^"]*"/, `$1${new Date(START + SKEW_MS).toISOString().slice(0, 19)}Z"`);
    expect((await app.post(app.response(alice, { mutateUnsigned: edge }))).status).toBe(200);
  });
});
