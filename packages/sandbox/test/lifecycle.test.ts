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

/**
 * An app that never answers: records each request and when its connection closed. `ping()` is
 * a round trip to the same server on a new connection (answered at once, not recorded).
 */
async function startHangingApp(): Promise<{ url: string; requests: IncomingMessage[]; closedAt: number[]; ping(): Promise<void>; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const closedAt: number[] = [];
  const server: Server = createServer((req, res) => {
    if (req.url === '/__ping') {
      res.writeHead(204, { connection: 'close' }).end();
      return;
    }
    requests.push(req);
    req.socket.once('close', () => closedAt.push(Date.now()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    closedAt,
    ping: async () => {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/__ping`);
      expect(res.status).toBe(204);
    },
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
    expect(app.closedAt).toEqual([]);
    await sb.stop();
    // stop() closed the delivery's connection (rather than leaving it to the 20 s delivery
    // timeout): a round trip to the app started after stop() finds it already seen closed.
    await app.ping();
    expect(app.requests).toHaveLength(1);
    expect(app.closedAt).toHaveLength(1);
  });

  it('stop() ends injected latency sleeps, so the process can exit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbx-stop-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const script = join(dir, 'latency.mts');
    writeFileSync(
      script,
      `import { startSandbox } from ${JSON.stringify(pathToFileURL(join(pkgDir, 'src', 'index.ts')).href)};
const sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:1' });
const rule = await sb.admin.addFault({ path: '/api/*', kind: 'latency', latencyMs: 600000 });
const outcome = fetch(sb.url + '/api/v1/ping').then((r) => 'answered ' + r.status, (e) => 'failed ' + e.name);
// Until the request sleeps in its fault.
while ((await sb.admin.faults()).find((f) => f.id === rule.id)?.hits === 0) await new Promise((r) => setImmediate(r));
const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
await sb.stop();
const timersAfter = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const result = await outcome;
console.log(JSON.stringify({ timersBefore, timersAfter, outcome: result, keepingAlive: process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap') }));
`,
    );
    // The child exits on its own once stop() resolved (the 25 s kill only guards against a hang).
    const { error, out } = await new Promise<{ error: Error | null; out: string }>((resolve) => {
      execFile('node', ['--conditions=@org/source', '--import', 'tsx', script], { cwd: rootDir, timeout: 25_000 }, (err, stdout) => resolve({ error: err, out: stdout }));
    });
    const report = JSON.parse(out.trim().split('\n').pop() || '{}') as { timersBefore: number; timersAfter: number; outcome: string; keepingAlive: string[] };
    // The 10-minute latency sleep was a live timer; stop() cleared it and nothing but the stdio
    // pipes is left to keep the process alive; the delayed request was cut, never answered.
    expect(report.timersBefore).toBe(1);
    expect(report.timersAfter).toBe(0);
    expect(report.outcome).toBe('failed TypeError');
    expect(report.keepingAlive).toEqual([]);
    expect(error).toBeNull();
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
  /** Everything a refused admin request could have changed. */
  const snapshot = async (sb: Sandbox) => ({ state: await sb.admin.state(), groups: await sb.admin.listGroups(), users: await sb.admin.listUsers() });
  const post = (sb: Sandbox, what: 'groups' | 'users', body: unknown) =>
    fetch(`${sb.listenUrl}/__admin/${what}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('createGroup/createUser reject ids that are not URL-safe and store nothing; malformed UI/admin URLs answer 400', async () => {
    const sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:39412', seed: 10 });
    try {
      const before = await snapshot(sb);
      expect(before.groups.length).toBeGreaterThan(0);
      for (const id of ['', 'cld-50%off', 'cld-a/b', 'cld x']) {
        const res = await post(sb, 'groups', { id });
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ error: { field: 'id' } });
        expect(await snapshot(sb), JSON.stringify(id)).toEqual(before);
      }
      for (const id of ['usr-q?x', '', 'usr a', 'usr/1']) {
        const user = await post(sb, 'users', { id, memberships: [{ groupId: 'cld-sbx1' }] });
        expect(user.status).toBe(400);
        expect(await user.json()).toMatchObject({ error: { field: 'id' } });
        expect(await snapshot(sb), JSON.stringify(id)).toEqual(before);
      }
      expect((await sb.admin.createGroup({ id: 'cld_Ok-1' })).id).toBe('cld_Ok-1');
      expect((await sb.admin.listGroups()).map((g) => g.id)).toEqual([...before.groups.map((g) => g.id), 'cld_Ok-1']);
      expect((await fetch(`${sb.listenUrl}/ui/groups/cld-50%off`)).status).toBe(400);
      expect((await fetch(`${sb.listenUrl}/__admin/groups/cld-50%off`)).status).toBe(400);
      const page = await (await fetch(`${sb.listenUrl}/ui/groups/cld-sbx1`)).text();
      expect(page).toMatch(/action="\/ui\/groups\/cld-sbx1\/users\/[A-Za-z0-9_-]+\/remove"/);
    } finally {
      await sb.stop();
    }
  });

  it('Connec! errors of the admin API are in its own format: the client throws their message and field', async () => {
    const sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:39412', seed: 10 });
    try {
      const before = await snapshot(sb);
      // A singular collection name, the usual slip: refused with its name, not "Admin API error 400".
      await expect(sb.admin.createRecord('cld-sbx1', 'person', { first_name: 'Ada' })).rejects.toMatchObject({ status: 400, field: 'collection', message: 'Unknown resource person' });
      await expect(sb.admin.listRecords('cld-sbx1', 'person')).rejects.toMatchObject({ status: 400, field: 'collection' });
      await expect(sb.admin.getRecord('cld-sbx1', 'person', 'x')).rejects.toMatchObject({ status: 400, field: 'collection' });
      await expect(sb.admin.updateRecord('cld-sbx1', 'people', 'no-such-id', { last_name: 'X' })).rejects.toMatchObject({ status: 404, field: 'id', message: 'Resource not found' });
      // A validation error of the record itself names the problem too.
      const res = await fetch(`${sb.listenUrl}/__admin/connec/cld-sbx1/people`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ people: { first_name: 'Ada', id: 'mine' } }),
      });
      expect(res.status).toBe(409);
      expect(await res.json()).toEqual({ error: { field: 'record', message: 'A record cannot be created with an id' } });
      expect(await snapshot(sb)).toEqual(before);
    } finally {
      await sb.stop();
    }
  });

  it('createUser with an unknown group or an unknown role is refused with 400 and stores nothing (not even its valid memberships)', async () => {
    const sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:39412', seed: 10 });
    try {
      const before = await snapshot(sb);
      const refused: [unknown, string][] = [
        [{ id: 'usr-new-1', memberships: [{ groupId: 'cld-nowhere' }] }, 'group_id'],
        [{ id: 'usr-new-2', memberships: [{ groupId: 'cld-sbx1' }, { groupId: 'cld-nowhere', role: 'Admin' }] }, 'group_id'],
        [{ id: 'usr-new-3', memberships: [{ groupId: 'cld-sbx1', role: 'Emperor' }] }, 'role'],
        [{ id: 'usr-new-4', memberships: [{ groupId: 'cld-sbx1', role: 'Admin' }, { groupId: 'cld-sbx2', role: 'admin' }] }, 'role'],
      ];
      for (const [body, field] of refused) {
        const res = await post(sb, 'users', body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(await res.json()).toMatchObject({ error: { field } });
        expect(await snapshot(sb), JSON.stringify(body)).toEqual(before);
      }
      // The admin client is refused the same way.
      await expect(sb.admin.createUser({ id: 'usr-new-5', memberships: [{ groupId: 'cld-nowhere' }] })).rejects.toMatchObject({ status: 400, field: 'group_id' });
      expect(await snapshot(sb)).toEqual(before);
      expect((await fetch(`${sb.listenUrl}/__admin/users/usr-new-2`)).status).toBe(404);
      // The same request with a known group and role is stored, with its memberships.
      const created = await post(sb, 'users', { id: 'usr-new-2', memberships: [{ groupId: 'cld-sbx1' }, { groupId: 'cld-sbx2', role: 'Admin' }] });
      expect(created.status).toBe(201);
      expect((await sb.admin.getUser('usr-new-2')).memberships).toEqual([
        { groupId: 'cld-sbx1', userId: 'usr-new-2', role: 'Member' },
        { groupId: 'cld-sbx2', userId: 'usr-new-2', role: 'Admin' },
      ]);
    } finally {
      await sb.stop();
    }
  });
});
