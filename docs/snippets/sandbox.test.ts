/**
 * Testing an integration against the sandbox: the guides' example app, a local Maestrano
 * platform, real HTTP and real SAML. Run by `npx vitest run --project docs`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningApp, startApp } from './server.js';

/** A free loopback port, so the sandbox knows the app's URL before the app starts. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

describe('the example app against the Maestrano sandbox', () => {
  let sandbox: Sandbox;
  let app: RunningApp;
  let dir: string;

  // #region setup
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'docs-sandbox-'));
    const port = await freePort();
    // A local Maestrano: IdP, Account API, Connec! and webhooks, with seeded groups, users and records.
    sandbox = await startSandbox({ port: 0, appUrl: `http://127.0.0.1:${port}`, seed: 100 });
    // The app reads the same marketplaces document the developer platform would serve.
    const { apiKey, apiSecret } = sandbox.credentials.environment;
    const doc = await fetch(sandbox.marketplacesUrl, {
      headers: { authorization: `Basic ${Buffer.from(`${apiKey}:${apiSecret}`).toString('base64')}` },
    });
    if (!doc.ok) throw new Error(`the sandbox refused the marketplaces document: ${doc.status} ${await doc.text()}`);
    const configFile = join(dir, 'maestrano.json');
    writeFileSync(configFile, await doc.text());
    app = await startApp({ configFile, port });
  });

  afterAll(async () => {
    await app?.stop();
    await sandbox?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  // #endregion setup

  // #region sso
  /** SP-initiated SSO without a browser: the app's redirect, the IdP's answer, the ACS post. */
  async function login(userId: string, groupId: string): Promise<string> {
    const init = await fetch(`${app.url}/maestrano/auth/saml/init/sandbox?group_id=${groupId}`, { redirect: 'manual' });
    const requestCookie = init.headers.get('set-cookie')?.split(';')[0] ?? '';
    const sso = await sandbox.admin.ssoLogin({ authnRequestUrl: init.headers.get('location') ?? '', userId, groupId });
    const consume = await fetch(sso.acsUrl, {
      method: 'POST',
      body: new URLSearchParams({ SAMLResponse: sso.samlResponse, RelayState: sso.relayState ?? '' }),
      headers: { cookie: requestCookie },
      redirect: 'manual',
    });
    expect(consume.status).toBe(303);
    // The app's session cookie (the SDK also clears its `mno_sso_req_<tenant>` cookie here).
    return consume.headers
      .getSetCookie()
      .map((c) => c.split(';')[0] ?? '')
      .filter((c) => !c.startsWith('mno_sso_req_'))
      .join('; ');
  }
  // #endregion sso

  it('provisions, imports, bills, syncs both ways and honours cancellation', { timeout: 60_000 }, async () => {
    // #region scenario
    const { admin } = sandbox;
    const [group] = await admin.listGroups();
    if (!group) throw new Error('the seed made no group');
    const user = await admin.createUser({ name: 'Ada', surname: 'Admin', email: 'ada@example.com', memberships: [{ groupId: group.id, role: 'Admin' }] });

    // First SSO: the company and the user are created, the app session starts.
    const cookie = await login(user.id, group.id);
    const company = [...app.db.companies.values()].find((c) => c.groupId === group.id);
    expect(company?.name).toBe(group.name);

    // The worker imports the group's Connec! people and sets up the subscription.
    const people = await admin.listRecords(group.id, 'people', { limit: 1000 });
    await expect.poll(() => [...app.db.contacts.values()].filter((c) => c.groupId === group.id).length, { timeout: 30_000 }).toBe(people.length);
    await expect.poll(async () => (await admin.listRecurringBills(group.id)).length, { timeout: 30_000 }).toBe(1);

    // A change made in Connec! by someone else arrives as a notification.
    const person = people[0];
    if (!person) throw new Error('the seed made no people');
    await admin.updateRecord(group.id, 'people', String(person.id), { last_name: 'Changed-in-Connec' });
    await admin.waitForDeliveries();
    await expect.poll(() => [...app.db.contacts.values()].some((c) => c.lastName === 'Changed-in-Connec'), { timeout: 30_000 }).toBe(true);

    // A change made in the app is pushed to Connec!.
    const contact = [...app.db.contacts.values()].find((c) => c.groupId === group.id && c.lastName !== 'Changed-in-Connec');
    const edit = await fetch(`${app.url}/contacts/${contact?.id}`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ lastName: 'Changed-in-the-app' }),
      redirect: 'manual',
    });
    expect(edit.status).toBe(303);
    const pushed = await admin.listRecords(group.id, 'people', { limit: 1000 });
    expect(pushed.filter((p) => p.last_name === 'Changed-in-the-app')).toHaveLength(1);

    // An ad-hoc charge, retried with the same key, bills once.
    const charge = async () => {
      const res = await fetch(`${app.url}/export`, { method: 'POST', headers: { cookie, 'idempotency-key': 'req-1' } });
      return (await res.json()) as { billId: string; status: string };
    };
    const [first, retry] = [await charge(), await charge()];
    expect(retry).toEqual({ billId: first.billId, status: 'replayed' });
    expect((await admin.listBills(group.id)).filter((b) => b.description === 'Contacts export')).toHaveLength(1);

    // The group is cancelled on Maestrano: the webhook ends access.
    await admin.cancelGroup(group.id);
    await admin.waitForDeliveries();
    expect(company?.active).toBe(false);
    const after = await fetch(`${app.url}/contacts`, { headers: { cookie }, redirect: 'manual' });
    expect(after.headers.get('location')).toBe('/login');
    // #endregion scenario

    // The readiness probe (workers-at-scale.md): storage reachable, writable and migrated.
    const health = await fetch(`${app.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, storage: { ok: true, adapter: 'memory' }, tenants: 1 });
  });
});
