// A login's seat report (onSeatsChanged) that runs longer than the seats lock's lease (the
// provisioning claim TTL; the hook itself may run up to three of them) keeps the lock: another
// login of the group does not count and report meanwhile, so the last report carries the real
// count. Through `mno.handler` on loopback HTTP with signed assertions from the test IdP.
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

it('a seat report slower than the claim TTL keeps the seats lock: the last report carries the real count', async () => {
  // The storage's clock stands still unless the test moves it: the lease is outlasted by moving
  // it past the first lease (a renewal in between), and cannot lapse because a loaded machine
  // delayed a renewal in real time while usr-2's login waits for the lock. The claim TTL leaves
  // the login's real-time reading of its lease (a confirmed renewal within three quarters of it)
  // room for event-loop stalls.
  const CLAIM_TTL_MS = 3_000;
  let nowMs = Date.now();
  const inner = memoryAdapter({ clock: () => new Date(nowMs) });
  /** Confirmed renewals of a login's seats lock, in order. */
  const seatRenewals: string[] = [];
  const storage: StorageAdapter = {
    ...inner,
    locks: {
      ...inner.locks,
      refresh: async (key, owner, ttlMs) => {
        const ok = await inner.locks.refresh(key, owner, ttlMs);
        if (ok && owner.includes(':sso-seats:')) seatRenewals.push(owner);
        return ok;
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
  const reports: { uid: string; activeSeats: number }[] = [];
  let second: Promise<number> | undefined;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: appUrl, apiId: api.apiId, apiKey: api.apiKey, idpHost: api.url })],
    storage,
    provisioning: {
      createCompany: () => ({ id: `company-${++seq}` }),
      createUser: () => ({ id: `user-${++seq}` }),
      onSeatsChanged: async (_company, change) => {
        const uid = change.added[0] as string;
        reports.push({ uid, activeSeats: change.activeSeats });
        // usr-1's billing call is slow: it outlasts the first lease of the seats lock (taken at
        // the storage's `nowMs`, renewed meanwhile), and answers only once usr-2's login has been answered.
        if (uid === 'usr-1') {
          nowMs += CLAIM_TTL_MS * 0.6;
          const renewed = seatRenewals.length;
          await expect.poll(() => seatRenewals.length > renewed).toBe(true);
          nowMs += CLAIM_TTL_MS * 0.6;
          second = login('usr-2');
          await second;
        }
      },
    },
    onLogin: () => new Response('ok'),
    sso: { allowIdpInitiated: true, provisioningClaimTtlMs: CLAIM_TTL_MS },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;

  expect(await login('usr-1')).toBe(200);
  // usr-2's login while usr-1's report ran: refused as busy (503) and retried, or answered.
  if ((await second) !== 200) expect(await login('usr-2')).toBe(200);

  const active = (await storage.users.listMemberships(TENANT, { groupId: 'cld-1' })).filter((m) => m.status === 'active');
  expect(active.map((m) => m.uid).sort()).toEqual(['usr-1', 'usr-2']);
  // Each report counts the seats its own write leaves: the last one is the real count.
  expect(reports.at(-1)).toEqual({ uid: 'usr-2', activeSeats: 2 });
  expect(reports.map((r) => r.activeSeats)).not.toContain(0);
}, 20_000);
