// Through a real HTTP server (`toNodeListener(mno.handler)`): when the platform hangs up a member
// removal while the app's hook runs, the hook's ctx.signal aborts (an AbortError), the removal
// writes nothing, and the retry completes.
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMaestrano, memoryAdapter, toNodeListener } from '@org/maestrano-sdk';
import { createTestIdp } from '@org/maestrano-sdk/testing';
import { expect, it } from 'vitest';

it('a hang-up during removeMembership aborts its ctx.signal; nothing written; the retry completes', async () => {
  const idp = createTestIdp();
  const storage = memoryAdapter();
  const claim = await storage.groups.claim('one', 'cld-1', { owner: 'seed', ttlMs: 60_000 });
  expect(claim.state).toBe('claimed');
  await storage.groups.complete('one', 'cld-1', 'seed', { companyId: 'company-1', trialEndsAt: null });
  await storage.users.claim('one', 'usr-1', { owner: 'seed', ttlMs: 60_000 });
  await storage.users.complete('one', 'usr-1', 'seed', { userId: 'user-1' });
  await storage.users.upsertMembership('one', 'usr-1', 'cld-1', 'Member');
  let hang = true;
  let reached!: () => void;
  const inHook = new Promise<void>((resolve) => {
    reached = resolve;
  });
  let reason: unknown;
  const mno = createMaestrano({
    tenants: [idp.marketplace({ name: 'one', appHost: 'http://127.0.0.1:3000', apiId: 'app-1', apiKey: 'key-one' })],
    storage,
    provisioning: {
      createCompany: () => ({ id: 'c' }),
      createUser: () => ({ id: 'u' }),
      removeMembership: (_user, _company, ctx) => {
        if (!hang) return;
        return new Promise<void>((_, reject) => {
          ctx.signal.addEventListener('abort', () => {
            reason = ctx.signal.reason;
            reject(ctx.signal.reason);
          });
          reached();
        });
      },
    },
    onLogin: () => new Response(null, { status: 303 }),
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  const server = createServer(toNodeListener(mno.handler));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const del = (signal?: AbortSignal) =>
    new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'DELETE', path: '/maestrano/account/groups/cld-1/users/usr-1/one', headers: { authorization: `Basic ${Buffer.from('app-1:key-one').toString('base64')}` }, signal },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });
  try {
    const hangUp = new AbortController();
    const first = del(hangUp.signal).catch((error: unknown) => error);
    await inHook;
    hangUp.abort();
    await first;
    for (let i = 0; i < 1_000 && reason === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(reason).toBeInstanceOf(DOMException);
    expect((reason as DOMException).name).toBe('AbortError');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await storage.users.listMemberships('one', { groupId: 'cld-1' })).map((m) => m.status)).toEqual(['active']);
    hang = false;
    expect(await del()).toBe(200);
    expect((await storage.users.listMemberships('one', { groupId: 'cld-1' })).map((m) => m.status)).toEqual(['removed']);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
