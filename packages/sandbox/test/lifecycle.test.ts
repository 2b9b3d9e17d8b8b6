import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { startReceiver } from './helpers.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const rootDir = join(pkgDir, '..', '..');

/** An app that never answers: records each request and when its connection closed. */
async function startHangingApp(): Promise<{ url: string; requests: IncomingMessage[]; closedAt: number[]; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const closedAt: number[] = [];
  const server: Server = createServer((req) => {
    requests.push(req);
    req.socket.once('close', () => closedAt.push(Date.now()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    closedAt,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('sandbox lifecycle: reset and stop', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('reset drops queued Connec! notifications, pending retries and in-flight deliveries', async () => {
    const app = await startReceiver();
    cleanups.push(() => app.close());
    app.failNext(1000);
    const sb = await startSandbox({ port: 0, appUrl: app.url, seed: 10, notifyDelayMs: 300, retryBaseMs: 200 });
    cleanups.push(() => sb.stop());
    // A failing account webhook (retried) and a coalesced Connec! notification (still queued).
    await sb.admin.cancelGroup('cld-sbx2');
    await app.waitFor(() => true);
    await sb.admin.createRecord('cld-sbx1', 'people', { first_name: 'Before', last_name: 'Reset' });
    await sb.admin.reset();
    const seen = app.requests.length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(app.requests.length).toBe(seen);
    expect(await sb.admin.deliveries()).toEqual([]);
    // Deliveries made after the reset still go out.
    app.failNext(0);
    await sb.admin.createGroup({ id: 'cld-after' });
    await sb.admin.createRecord('cld-after', 'people', { first_name: 'After' });
    const { idle, deliveries } = await sb.admin.waitForDeliveries();
    expect(idle).toBe(true);
    expect(deliveries.map((d) => [d.kind, d.state])).toEqual([['connec.notification', 'delivered']]);
  });

  it('reset aborts a delivery in flight to an app that does not answer', async () => {
    const app = await startHangingApp();
    cleanups.push(() => app.close());
    const sb = await startSandbox({ port: 0, appUrl: app.url, seed: 10, deliveryTimeoutMs: 20_000 });
    cleanups.push(() => sb.stop());
    await sb.admin.cancelGroup('cld-sbx1');
    await until(() => app.requests.length === 1);
    await sb.admin.reset();
    const { idle } = await sb.admin.waitForDeliveries(2000);
    expect(idle).toBe(true);
    await until(() => app.closedAt.length === 1, 2000);
  });

  it('stop() aborts a delivery in flight', async () => {
    const app = await startHangingApp();
    cleanups.push(() => app.close());
    const sb = await startSandbox({ port: 0, appUrl: app.url, seed: 10, deliveryTimeoutMs: 20_000 });
    await sb.admin.cancelGroup('cld-sbx1');
    await until(() => app.requests.length === 1);
    const stoppedAt = Date.now();
    await sb.stop();
    await until(() => app.closedAt.length === 1, 3000);
    expect((app.closedAt[0] ?? 0) - stoppedAt).toBeLessThan(2000);
  });

  it('stop() ends injected latency sleeps, so the process can exit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbx-stop-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const script = join(dir, 'latency.mts');
    writeFileSync(
      script,
      `import { startSandbox } from ${JSON.stringify(pathToFileURL(join(pkgDir, 'src', 'index.ts')).href)};
const sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:1' });
await sb.admin.addFault({ path: '/api/*', kind: 'latency', latencyMs: 30000 });
fetch(sb.url + '/api/v1/ping').catch(() => {});
await new Promise((r) => setTimeout(r, 300));
await sb.stop();
console.log('stopped', Date.now());
`,
    );
    const started = Date.now();
    const out = await new Promise<string>((resolve, reject) => {
      execFile('node', ['--conditions=@org/source', '--import', 'tsx', script], { cwd: rootDir, timeout: 25_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    const stopped = Number(/stopped (\d+)/.exec(out)?.[1]);
    expect(stopped).toBeGreaterThan(started);
    expect(Date.now() - stopped).toBeLessThan(5000);
  }, 30_000);

  it('sandbox.admin talks to the listen URL, not to publicUrl', async () => {
    const sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:39412', publicUrl: 'http://sandbox.invalid:4000' });
    cleanups.push(() => sb.stop());
    expect(sb.url).toBe('http://sandbox.invalid:4000');
    const state = await sb.admin.state();
    expect(state.url).toBe('http://sandbox.invalid:4000');
  });

  it('reset ends the IdP browser sessions', async () => {
    const sb: Sandbox = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:39412', seed: 10 });
    cleanups.push(() => sb.stop());
    const apiId = sb.credentials.marketplaces[0]?.apiId ?? '';
    const xml = `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="${new Date().toISOString()}"><saml:Issuer>${apiId}</saml:Issuer></samlp:AuthnRequest>`;
    const q = `/api/v1/auth/saml?SAMLRequest=${encodeURIComponent(deflateRawSync(xml).toString('base64'))}&group_id=cld-sbx2`;
    const login = await fetch(`${sb.url}/login`, { method: 'POST', body: new URLSearchParams({ user_id: 'usr-sbx3', return_to: q }), redirect: 'manual' });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    expect(await (await fetch(sb.url + q, { headers: { cookie } })).text()).toContain('SAMLResponse');
    await sb.admin.reset({ seed: 10 });
    const after = await (await fetch(sb.url + q, { headers: { cookie } })).text();
    expect(after).not.toContain('SAMLResponse');
    expect(after).toContain('Sign in as');
  });
});

describe('ids in admin input and UI URLs', () => {
  it('createGroup/createUser reject ids that are not URL-safe; malformed UI/admin URLs answer 400', async () => {
    const sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:39412', seed: 10 });
    try {
      for (const id of ['', 'cld-50%off', 'cld-a/b', 'cld x']) {
        const res = await fetch(`${sb.listenUrl}/__admin/groups`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id }) });
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ error: { field: 'id' } });
      }
      const user = await fetch(`${sb.listenUrl}/__admin/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'usr-q?x', memberships: [{ groupId: 'cld-sbx1' }] }) });
      expect(user.status).toBe(400);
      expect(await user.json()).toMatchObject({ error: { field: 'id' } });
      expect((await sb.admin.createGroup({ id: 'cld_Ok-1' })).id).toBe('cld_Ok-1');
      expect((await fetch(`${sb.listenUrl}/ui/groups/cld-50%off`)).status).toBe(400);
      expect((await fetch(`${sb.listenUrl}/__admin/groups/cld-50%off`)).status).toBe(400);
      const page = await (await fetch(`${sb.listenUrl}/ui/groups/cld-sbx1`)).text();
      expect(page).toMatch(/action="\/ui\/groups\/cld-sbx1\/users\/[A-Za-z0-9_-]+\/remove"/);
    } finally {
      await sb.stop();
    }
  });
});
