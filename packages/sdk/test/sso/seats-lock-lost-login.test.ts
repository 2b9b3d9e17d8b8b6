// A login whose seats lock is lost while `onSeatsChanged` runs (its renewals go unanswered, the
// lease lapses, another login of the group takes the lock, counts and writes; the late renewal
// is then refused) writes no membership: it answers 503, and its retry reports again with the
// count the other login left and writes. Nothing is half done: the user is created once, and
// the app's hooks are called again under the same keys. Through `mno.handler` on loopback HTTP
// with signed assertions from the test IdP.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { toNodeListener } from '../../src/http/node.js';
import { createMaestrano } from '../../src/maestrano.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestIdp, type TestIdp } from '../../src/testing/idp.js';
import { type AccountApiServer, startAccountApiServer } from '../billing/account-api-server.js';
import { provisionGroup } from '../billing/helpers.js';

const TENANT = 'maestrano-test';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let api: AccountApiServer;
let idp: TestIdp;
let server: Server | undefined;
beforeAll(async () => {
  api = await startAccountApiServer();
  idp = createTestIdp();
});
afterAll(async () => {
  await api.close();
});
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

it('a login that lost its seats lock during onSeatsChanged writes nothing (503); its retry reports the real count and writes', async () => {
  // The lease lapses when the test moves the storage's clock past it, not after a real-time
  // sleep: on a loaded machine, a sleep just past a 1 s lease left other real-time bounds of the
  // login (renewal cadence, three leases for a hook) with too little room.
  const CLAIM_TTL_MS = 3_000;
  let skewMs = 0;
  const inner = memoryAdapter({ clock: () => new Date(Date.now() + skewMs) });
  /** The renewals of this seats-lock owner wait until `unstall` (the storage is slow to answer them). */
  let stalledOwner: string | null = null;
  let stalling = false;
  let unstall!: () => void;
  const stalled = new Promise<void>((resolve) => {
    unstall = resolve;
  });
  /** Resolves once a renewal of the stalled owner is held back. */
  let heldBack!: () => void;
  const renewalHeldBack = new Promise<void>((resolve) => {
    heldBack = resolve;
  });
  const storage: StorageAdapter = {
    ...inner,
    locks: {
      ...inner.locks,
      refresh: async (key, owner, ttlMs) => {
        if (stalling && owner.includes(':sso-seats:') && (stalledOwner === null || stalledOwner === owner)) {
          stalledOwner = owner;
          heldBack();
          await stalled;
        }
        return inner.locks.refresh(key, owner, ttlMs);
      },
    },
  };
  await provisionGroup(storage, TENANT, 'cld-1');
  let handler: ((request: Request) => Promise<Response>) | undefined;
  server = createServer((req, res) => void toNodeListener((r) => handler!(r))(req, res));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const acsUrl = `${appUrl}/maestrano/auth/saml/consume/${TENANT}`;
  const login = async (uid: string) => {
    const res = await fetch(acsUrl, {
      method: 'POST',
      body: new URLSearchParams({ SAMLResponse: idp.response({ uid, email: `${uid}@example.com`, groupUid: 'cld-1' }, { acsUrl, inResponseTo: null }) }),
      redirect: 'manual',
    });
    await res.arrayBuffer();
    return res.status;
  };
  let seq = 0;
  const calls: string[] = [];
  const reports: { uid: string; activeSeats: number; key: string }[] = [];
  let second: number | undefined;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: appUrl, apiId: api.apiId, apiKey: api.apiKey, idpHost: api.url })],
    storage,
    provisioning: {
      createCompany: () => ({ id: `company-${++seq}` }),
      createUser: (user) => {
        calls.push(`createUser:${user.uid}`);
        return { id: `user-${++seq}` };
      },
      addMembership: (user, _company, _role, ctx) => void calls.push(`addMembership:${user.uid}:${ctx.idempotencyKey}`),
      onSeatsChanged: async (_company, change, ctx) => {
        const uid = change.added[0] as string;
        reports.push({ uid, activeSeats: change.activeSeats, key: ctx.idempotencyKey });
        if (uid === 'usr-1' && second === undefined) {
          // usr-1's billing call is slow, and so is the storage with its renewals: once one is
          // held back, the lease lapses (the storage's clock moved past it: every renewal it
          // confirmed came before the hold-up), usr-2's login takes the lock, counts and writes;
          // then the renewal reaches the storage and is refused.
          stalling = true;
          await renewalHeldBack;
          skewMs += CLAIM_TTL_MS + 100;
          second = await login('usr-2');
          unstall();
          await sleep(50);
        }
      },
    },
    onLogin: ({ user }) => {
      calls.push(`onLogin:${user.uid}`);
      return new Response('ok');
    },
    sso: { allowIdpInitiated: true, provisioningClaimTtlMs: CLAIM_TTL_MS },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;

  expect(await login('usr-1')).toBe(503);
  expect(second).toBe(200);
  const memberships = async () =>
    (await storage.users.listMemberships(TENANT, { groupId: 'cld-1' }))
      .filter((m) => m.status === 'active')
      .map((m) => m.uid)
      .sort();
  // Nothing of usr-1's membership written: only usr-2, which the other login counted and wrote.
  expect(await memberships()).toEqual(['usr-2']);
  expect(reports.map(({ uid, activeSeats }) => ({ uid, activeSeats }))).toEqual([
    { uid: 'usr-1', activeSeats: 1 },
    { uid: 'usr-2', activeSeats: 1 },
  ]);

  // Maestrano's retry of usr-1: reported with the count usr-2's write left, then written.
  expect(await login('usr-1')).toBe(200);
  expect(await memberships()).toEqual(['usr-1', 'usr-2']);
  expect(reports.at(-1)).toMatchObject({ uid: 'usr-1', activeSeats: 2 });
  // A new report (the group changed meanwhile), not a duplicate of the first one to skip.
  expect(reports.at(-1)?.key).not.toBe(reports[0]?.key);
  // The user was created once; addMembership was asked again under the same key; one login answered.
  expect(calls.filter((c) => c === 'createUser:usr-1')).toHaveLength(1);
  const adds = calls.filter((c) => c.startsWith('addMembership:usr-1:'));
  expect(adds).toHaveLength(2);
  expect(adds[1]).toBe(adds[0]);
  expect(calls.filter((c) => c === 'onLogin:usr-1')).toHaveLength(1);
  expect((await storage.users.get(TENANT, 'usr-1'))?.status).toBe('active');
}, 20_000);
