// Virtual mode: a user the removal webhook blocked, added back by Maestrano (a signed login),
// while the group is deleted. The deletion's first block pass lands right after the login
// wrote the membership, before the login reads the user's status: the pass finds the user
// blocked (nothing to tell the app) and removes the membership; the login must not then set
// the user back to active in a group being deleted. Through `mno.handler` on loopback HTTP
// with real signed assertions; the interleaving is forced with storage wrappers.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMaestrano, memoryAdapter, type StorageAdapter, toNodeListener } from '@org/maestrano-sdk';
import { createTestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, expect, it } from 'vitest';

const TENANT = 'readd';
const idp = createTestIdp();
let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => {
    if (!server) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
  server = undefined;
});

it('virtual mode: a blocked user re-added while the group is deleted is left blocked, and the app told so', async () => {
  let offsetMs = 0;
  const clock = () => new Date(Date.now() + offsetMs);
  const inner = memoryAdapter({ clock });
  /** Run once right after the next membership write of the re-added user. */
  let afterUpsert: (() => Promise<void>) | undefined;
  /** Awaited by the deletion before it marks the group cancelled. */
  let beforeCancel: (() => Promise<void>) | undefined;
  const storage: StorageAdapter = {
    ...inner,
    users: {
      ...inner.users,
      upsertMembership: async (...args) => {
        const written = await inner.users.upsertMembership(...args);
        const run = afterUpsert;
        afterUpsert = undefined;
        await run?.();
        return written;
      },
    },
    groups: {
      ...inner.groups,
      cancel: async (...args) => {
        const run = beforeCancel;
        beforeCancel = undefined;
        await run?.();
        return inner.groups.cancel(...args);
      },
    },
  };
  const calls: string[] = [];
  let handler: (request: Request) => Promise<Response> = async () => new Response(null, { status: 503 });
  server = createServer(toNodeListener((request) => handler(request)));
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: url, apiId: 'app-readd', apiKey: 'key-readd-0123456789', sso: { creation_mode: 'virtual' } })],
    storage,
    clock,
    billing: { cancelRecurringBillsOnGroupDeleted: false },
    provisioning: {
      createCompany: (group) => ({ id: `co-${group.uid}` }),
      createUser: (user) => ({ id: `app-${user.key}` }),
      addMembership: (user, company) => void calls.push(`addMembership:${user.uid}:${company.groupId}`),
      removeMembership: (user, company) => void calls.push(`removeMembership:${user.uid}:${company.groupId}`),
      blockUser: (user) => void calls.push(`blockUser:${user.uid}`),
      cancelCompany: (company) => void calls.push(`cancelCompany:${company.groupId}`),
    },
    onLogin: ({ user }) => {
      calls.push(`onLogin:${user.uid}`);
      return Response.json({ ok: true });
    },
    sso: { allowIdpInitiated: true },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;
  const acsUrl = `${url}/maestrano/auth/saml/consume/${TENANT}`;
  const login = async (user: TestUser) => {
    const res = await fetch(acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: idp.response(user, { acsUrl, inResponseTo: null, now: clock() }) }), redirect: 'manual' });
    await res.arrayBuffer();
    return res.status;
  };
  const webhook = async (path: string) => {
    const res = await fetch(`${url}${path}/${TENANT}`, {
      method: 'DELETE',
      headers: { authorization: `Basic ${Buffer.from('app-readd:key-readd-0123456789').toString('base64')}` },
    });
    await res.arrayBuffer();
    return res.status;
  };
  const state = async (uid: string) => {
    const [membership] = await storage.users.listMemberships(TENANT, { uid, groupId: 'cld-1' });
    return { membership: membership?.status ?? null, user: (await storage.users.get(TENANT, uid))?.status ?? null };
  };
  const usr1: TestUser = { uid: 'usr-1', email: 'usr-1@example.com', groupUid: 'cld-1', groupRole: 'Member' };
  const virtualUid = 'usr-1.cld-1';

  expect(await login({ ...usr1, uid: 'usr-0', email: 'usr-0@example.com' })).toBe(200);
  expect(await login(usr1)).toBe(200);
  // Maestrano removes usr-1: blocked (virtual mode: the user exists only through this group).
  expect(await webhook(`/maestrano/account/groups/cld-1/users/${virtualUid}`)).toBe(200);
  expect(await state(virtualUid)).toEqual({ membership: 'removed', user: 'blocked' });

  // Later Maestrano adds usr-1 back; right after its membership is written, the group is
  // deleted: its first block pass runs, and the deletion pauses before it marks the group cancelled.
  offsetMs += 1_000;
  let deletion: Promise<number> | undefined;
  let releaseCancel!: () => void;
  afterUpsert = async () => {
    const reached = new Promise<void>((resolve) => {
      beforeCancel = async () => {
        resolve();
        await new Promise<void>((release) => {
          releaseCancel = release;
        });
      };
    });
    deletion = webhook('/maestrano/account/groups/cld-1');
    await reached;
  };
  const readded = await login(usr1);
  releaseCancel();
  expect(await deletion).toBe(200);

  expect((await storage.groups.get(TENANT, 'cld-1'))?.status).toBe('cancelled');
  // Whatever the login answered, the user of a deleted group is blocked, and the app was told
  // after it had added the user back.
  expect([200, 403]).toContain(readded);
  expect(await state(virtualUid)).toEqual({ membership: 'removed', user: 'blocked' });
  const readdedAt = calls.lastIndexOf(`addMembership:${virtualUid}:cld-1`);
  expect(calls.slice(readdedAt)).toContain(`blockUser:${virtualUid}`);
}, 20_000);
