/**
 * The session lifecycle after login (PROTOCOL §3.6): what `mno.sso.checkSession` answers once
 * Maestrano's account webhooks have removed the user from the session's group, or deleted the
 * group. Maestrano's IdP session belongs to the user, not to the group: the IdP keeps answering
 * `valid: true` for it, so only the SDK's own records can tell that the access is gone.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

const running: { fresh: Harness; idpServer: Server }[] = [];
afterEach(async () => {
  for (const { fresh, idpServer } of running.splice(0)) {
    await fresh.close();
    await new Promise<void>((resolve) => idpServer.close(() => resolve()));
  }
});

/** A harness whose IdP session endpoint is a loopback server answering as the sandbox does. */
async function withSessionEndpoint(options: { creationMode?: 'real' | 'virtual' } = {}) {
  let calls = 0;
  const idpServer = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    // The Account API (a group deletion cancels the group's recurring bills): none.
    if ((req.url ?? '').startsWith('/api/v1/account/')) return void res.end(JSON.stringify({ success: true, data: [], errors: {} }));
    calls++;
    res.setHeader('date', new Date().toUTCString());
    // The user's Maestrano session is still live: Maestrano's IdP answers valid.
    res.end(JSON.stringify({ valid: /^\/api\/v1\/auth\/saml\/usr-1(\.|\?|$)/.test(req.url ?? ''), recheck: new Date(Date.now() + 180_000).toISOString() }));
  });
  await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
  const fresh = await startHarness({ tenantSso: { ...(options.creationMode ? { creation_mode: options.creationMode } : {}) } });
  running.push({ fresh, idpServer });
  // The session check goes to the loopback IdP (the SAML login uses the test IdP's keys).
  const tenant = fresh.mno.tenants.get(fresh.tenant)!;
  const loopback = `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}`;
  (tenant.sso as { idp: string }).idp = loopback;
  (tenant.api as { host: string }).host = loopback;
  const webhook = async (path: string) => {
    const res = await fetch(`${fresh.baseUrl}${path}/${fresh.tenant}`, {
      method: 'DELETE',
      headers: { authorization: `Basic ${Buffer.from('app-test-1:test-api-key-1').toString('base64')}` },
    });
    await res.body?.cancel();
    return res.status;
  };
  return { fresh, webhook, calls: () => calls };
}

async function signIn(fresh: Harness) {
  // A re-check is due at once (as it is 3 minutes after any login).
  const user = { uid: 'usr-1', email: 'alice@example.com', groupUid: 'cld-1', sessionRecheck: new Date(Date.now() - 1_000) };
  const answer = await fresh.login(user);
  expect(answer.status).toBe(200);
  return fresh.logins.at(-1)!.session;
}

describe('mno.sso.checkSession after the account webhooks', () => {
  it('a session whose IdP session is live stays valid (control)', async () => {
    const { fresh } = await withSessionEndpoint();
    const stored = await signIn(fresh);
    expect(await fresh.mno.sso.checkSession(stored)).toMatchObject({ valid: true, checked: true });
  });

  it('a member removed from the group is refused at the next re-check', async () => {
    const { fresh, webhook } = await withSessionEndpoint();
    const stored = await signIn(fresh);
    expect(await webhook('/maestrano/account/groups/cld-1/users/usr-1')).toBe(200);
    const check = await fresh.mno.sso.checkSession(stored);
    expect(check.valid).toBe(false);
  });

  it('a member removed in virtual identity mode is refused at the next re-check', async () => {
    const { fresh, webhook } = await withSessionEndpoint({ creationMode: 'virtual' });
    const stored = await signIn(fresh);
    expect(await webhook('/maestrano/account/groups/cld-1/users/usr-1.cld-1')).toBe(200);
    expect((await fresh.mno.sso.checkSession(stored)).valid).toBe(false);
  });

  it('the users of a deleted group are refused at the next re-check', async () => {
    const { fresh, webhook } = await withSessionEndpoint();
    const stored = await signIn(fresh);
    expect(await webhook('/maestrano/account/groups/cld-1')).toBe(200);
    expect((await fresh.mno.sso.checkSession(stored)).valid).toBe(false);
  });
});

describe('mno.sso.checkSession while Maestrano is down', () => {
  it('a burst of requests after a failed re-check does not send one IdP call each', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    let calls = 0;
    let down = true;
    const idpServer = createServer((_req, res) => {
      calls++;
      res.setHeader('content-type', 'application/json');
      if (down) {
        res.statusCode = 503;
        return void res.end('{"error":"maintenance"}');
      }
      res.end(JSON.stringify({ valid: true, recheck: new Date(now.getTime() + 180_000).toISOString() }));
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const fresh = await startHarness({ tenantSso: { idp: `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}` }, clock: () => now });
    running.push({ fresh, idpServer });
    const due = '2029-12-31T23:59:00Z';
    const sessions = ['tok-a', 'tok-b', 'tok-c'].map((token, i) => ({ tenant: fresh.tenant, uid: `usr-${i}`, groupUid: 'cld-1', session: token, recheck: due }));
    // One page of each of three users, then ten more requests of the first one, one after the other.
    for (const stored of [...sessions, ...Array.from({ length: 10 }, () => sessions[0]!)]) {
      const failed = await fresh.mno.sso.checkSession(stored).catch((error: unknown) => error);
      expect(failed).toMatchObject({ reason: 'session_check_failed' });
    }
    // Before: 13 calls to a platform that is already failing (one per request of every user).
    expect(calls).toBe(1);
    // A little later the IdP is asked again, and answers.
    down = false;
    now = new Date(now.getTime() + 60_000);
    expect(await fresh.mno.sso.checkSession(sessions[1])).toMatchObject({ valid: true, checked: true });
    expect(calls).toBe(2);
  });
});
