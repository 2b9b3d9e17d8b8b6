/**
 * The guide's session middleware (`signedIn` in app.ts) when Maestrano's IdP does not answer
 * the session re-check: `checkSession` throws `SsoError('session_check_failed')`, which the
 * app must turn into an answer (README §4: "the app decides whether to fail open or closed").
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningApp, startApp } from './server.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

describe('the example app while the IdP is down', () => {
  let sandbox: Sandbox | undefined;
  let app: RunningApp;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'docs-session-outage-'));
    const port = await freePort();
    sandbox = await startSandbox({ port: 0, appUrl: `http://127.0.0.1:${port}`, seed: 0 });
    const { apiKey, apiSecret } = sandbox.credentials.environment;
    const doc = await fetch(sandbox.marketplacesUrl, { headers: { authorization: `Basic ${Buffer.from(`${apiKey}:${apiSecret}`).toString('base64')}` } });
    const configFile = join(dir, 'maestrano.json');
    writeFileSync(configFile, await doc.text());
    app = await startApp({ configFile, port });
  });

  afterAll(async () => {
    await app?.stop();
    await sandbox?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a signed-in request with a "try again" page, not a 500, and keeps the session', async () => {
    const s = sandbox!;
    const group = await s.admin.createGroup({ name: 'Outage Co', marketplace: 'sandbox' });
    const user = await s.admin.createUser({ name: 'Ody', surname: 'Out', email: 'ody@example.com', memberships: [{ groupId: group.id, role: 'Admin' }] });
    const init = await fetch(`${app.url}/maestrano/auth/saml/init/sandbox?group_id=${group.id}`, { redirect: 'manual' });
    const sso = await s.admin.ssoLogin({ authnRequestUrl: init.headers.get('location') ?? '', userId: user.id, groupId: group.id });
    const consume = await fetch(sso.acsUrl, {
      method: 'POST',
      body: new URLSearchParams({ SAMLResponse: sso.samlResponse }),
      headers: { cookie: init.headers.get('set-cookie')?.split(';')[0] ?? '' },
      redirect: 'manual',
    });
    expect(consume.status).toBe(303);
    const cookie = consume.headers.get('set-cookie')?.split(';')[0] ?? '';
    expect((await fetch(`${app.url}/contacts`, { headers: { cookie }, redirect: 'manual' })).status).toBe(200);

    // Three minutes later, Maestrano is down when the re-check is due.
    const [sid, session] = [...app.db.sessions.entries()][0]!;
    app.db.sessions.set(sid, { ...session, maestrano: { ...session.maestrano, recheck: new Date(Date.now() - 1000).toISOString() } });
    await s.stop();
    sandbox = undefined;

    const res = await fetch(`${app.url}/contacts`, { headers: { cookie }, redirect: 'manual' });
    expect(res.status).toBe(503);
    expect(app.db.sessions.has(sid)).toBe(true);
  });
});
