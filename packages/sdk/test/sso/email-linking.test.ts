/**
 * Account linking by email (checklist 1.4.1) through the real ACS with RSA-signed responses:
 * the SDK never gives one app user to two uids of a tenant, a refused login links nothing,
 * and the documented `findUserByEmail` hooks (the guides' snippet, the SDK example app) stay
 * inside the tenant, so another marketplace's IdP cannot sign in as one of its users.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Maestrano, memoryAdapter, resolveTenants, staticTenants } from '@org/maestrano-sdk';
import { createTestIdp, type TestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createDb } from '../../../../docs/snippets/db.js';
import { createAppMaestrano } from '../../../../docs/snippets/maestrano.js';
import { buildMaestrano, sessions, users as exampleUsers } from '../../examples/app.js';
import { type Harness, startHarness, testIdp } from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('the SDK links an email match only to an app user no other uid of the tenant holds', () => {
  it('a second uid of the same marketplace with the email of an already-linked app user is linked to it (1.4.1)', async () => {
    const harness = await startHarness({ withFindUserByEmail: true });
    h = harness;
    const first = await harness.login({ uid: 'usr-alice', email: 'shared@corp.com', groupUid: 'cld-1' });
    expect(first.status).toBe(200);
    const second = await harness.login({ uid: 'usr-alice-2', email: 'shared@corp.com', groupUid: 'cld-2' });
    expect(second.status).toBe(200);
    expect(second.body['outcome']).toMatchObject({ linkedByEmail: true, userCreated: false });
    expect(second.body['userId']).toBe(first.body['userId']);
    expect((await harness.storage.users.findByUserId(harness.tenant, String(first.body['userId']))).map((u) => u.uid).sort()).toEqual(['usr-alice', 'usr-alice-2']);
    expect(harness.app.count('createUser')).toBe(1);
  });

  it('a pre-existing app user no uid is linked to is still linked (1.4.1)', async () => {
    h = await startHarness({ withFindUserByEmail: true });
    h.app.users.set('legacy-1', { email: 'bob@corp.com', firstName: 'Bob', key: 'pre-existing', companyId: null });
    const first = await h.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' });
    expect(first.body).toMatchObject({ userId: 'legacy-1', outcome: { linkedByEmail: true, userCreated: false } });
    expect((await h.storage.users.findByUserId(h.tenant, 'legacy-1')).map((u) => u.uid)).toEqual(['usr-bob']);
  });
});

describe('virtual mode links by the per-group address only', () => {
  it('a response without virtual_email does not link one group\'s user to the app user of another group by the real email', async () => {
    h = await startHarness({ withFindUserByEmail: true, tenantSso: { creation_mode: 'virtual' } });
    // An IdP that leaves `virtual_email` out: the SDK falls back to the real email.
    const noRelay = { virtual_email: null };
    const first = await h.login({ uid: 'usr-alice', email: 'alice@corp.com', groupUid: 'cld-1', extra: noRelay });
    expect(first.status).toBe(200);
    const second = await h.login({ uid: 'usr-alice', email: 'alice@corp.com', groupUid: 'cld-2', extra: noRelay });
    expect(second.status).toBe(200);
    // One person in two groups is two app users (PROTOCOL §3.5), however the email reads.
    expect(second.body['outcome']).toMatchObject({ linkedByEmail: false, userCreated: true });
    expect(second.body['userId']).not.toBe(first.body['userId']);
    expect((await h.storage.users.findByUserId(h.tenant, String(first.body['userId']))).map((u) => u.uid)).toEqual(['usr-alice.cld-1']);
  });

  it('the per-group address still links a pre-existing app user that holds it (1.4.1)', async () => {
    h = await startHarness({ withFindUserByEmail: true, tenantSso: { creation_mode: 'virtual' } });
    h.app.users.set('legacy-v', { email: 'usr-bob.cld-1@mail.maestrano.com', firstName: 'Bob', key: 'pre-existing', companyId: null });
    const res = await h.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' });
    expect(res.body).toMatchObject({ userId: 'legacy-v', outcome: { linkedByEmail: true, userCreated: false } });
  });
});

describe('a refused login records no email link', () => {
  it('into a cancelled group: 403, no user record; after the group is back the login reports linkedByEmail', async () => {
    const harness = await startHarness({ withFindUserByEmail: true });
    h = harness;
    harness.app.users.set('legacy-1', { email: 'victim@corp.com', firstName: 'V', key: 'pre-existing', companyId: null });
    expect((await harness.login({ uid: 'usr-owner', email: 'owner@corp.com', groupUid: 'cld-9' })).status).toBe(200);
    expect((await harness.storage.groups.cancel(harness.tenant, 'cld-9')).changed).toBe(true);

    const refused = await harness.login({ uid: 'usr-new', email: 'victim@corp.com', groupUid: 'cld-9' });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ error: 'provisioning_failed', message: 'This account has been cancelled' });
    expect(await harness.storage.users.get(harness.tenant, 'usr-new')).toBeNull();
    expect(await harness.storage.users.findByUserId(harness.tenant, 'legacy-1')).toEqual([]);
    expect(await harness.storage.users.listMemberships(harness.tenant, { uid: 'usr-new' })).toEqual([]);

    // The same person through a live group: the link happens now, and is reported.
    const ok = await harness.login({ uid: 'usr-new', email: 'victim@corp.com', groupUid: 'cld-10' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ userId: 'legacy-1', outcome: { linkedByEmail: true, userCreated: false, companyCreated: true } });
    expect((await harness.storage.users.get(harness.tenant, 'usr-new'))?.userId).toBe('legacy-1');
  });

  it('when createCompany throws: 500, no user record; the retry links and reports linkedByEmail', async () => {
    const harness = await startHarness({ withFindUserByEmail: true });
    h = harness;
    harness.app.users.set('legacy-1', { email: 'bob@corp.com', firstName: 'Bob', key: 'pre-existing', companyId: null });
    harness.app.failures.createCompany = 1;
    const failed = await harness.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-new' });
    expect(failed.status).toBe(500);
    expect(failed.body['error']).toBe('provisioning_failed');
    expect(await harness.storage.users.get(harness.tenant, 'usr-bob')).toBeNull();
    expect(await harness.storage.groups.get(harness.tenant, 'cld-new')).toBeNull();
    expect(harness.logins).toHaveLength(0);

    const ok = await harness.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-new' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ userId: 'legacy-1', outcome: { linkedByEmail: true, userCreated: false, companyCreated: true } });
    expect((await harness.storage.users.get(harness.tenant, 'usr-bob'))?.userId).toBe('legacy-1');
    expect(harness.app.count('createUser')).toBe(0);
  });

  it('when addMembership throws after the match: 500, no user record; the retry links and reports linkedByEmail', async () => {
    const harness = await startHarness({ withFindUserByEmail: true });
    h = harness;
    harness.app.users.set('legacy-1', { email: 'bob@corp.com', firstName: 'Bob', key: 'pre-existing', companyId: null });
    harness.app.failures.addMembership = 1;
    const failed = await harness.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' });
    expect(failed.status).toBe(500);
    expect(harness.logins).toHaveLength(0);
    expect(await harness.storage.users.get(harness.tenant, 'usr-bob')).toBeNull();
    expect(await harness.storage.users.findByUserId(harness.tenant, 'legacy-1')).toEqual([]);
    expect(await harness.storage.users.listMemberships(harness.tenant, { uid: 'usr-bob' })).toEqual([]);

    const ok = await harness.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ userId: 'legacy-1', outcome: { linkedByEmail: true, userCreated: false, membershipChanged: true } });
    expect((await harness.storage.users.get(harness.tenant, 'usr-bob'))?.userId).toBe('legacy-1');
  });
});

// ---------------------------------------------------------------------------------------
// The documented hooks, run in-process behind their own `mno.handler`.

const APP = 'https://app.example.com';

/** Init -> IdP -> consume in a fresh browser; the response and its cookies. */
async function login(mno: Maestrano, tenant: string, idp: TestIdp, user: TestUser): Promise<Response> {
  const init = await mno.handler(new Request(`${APP}/maestrano/auth/saml/init/${tenant}?group_id=${user.groupUid}`));
  const cookie = init.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const { samlResponse, acsUrl } = idp.respondTo(init.headers.get('location')!, user);
  return mno.handler(new Request(acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: samlResponse }), headers: { cookie } }));
}

const alice: TestUser = { uid: 'usr-alice', email: 'alice@corp.com', groupUid: 'cld-1', groupName: 'Alice Co' };
/** Marketplace B's IdP asserts Alice's email for one of its own users. */
const impostor: TestUser = { uid: 'usr-999', email: 'alice@corp.com', groupUid: 'cld-77', groupName: 'B Co' };

describe("the documented findUserByEmail hooks stay inside the tenant: marketplace B cannot sign in as A's user", () => {
  let idpB: TestIdp;
  let dir: string;
  const marketplaces = () => [
    testIdp().marketplace({ name: 'market-a', appHost: APP, apiId: 'app-a', apiKey: 'key-a-xxxxxxxx' }),
    idpB.marketplace({ name: 'market-b', appHost: APP, apiId: 'app-b', apiKey: 'key-b-xxxxxxxx' }),
  ];
  beforeAll(async () => {
    idpB = createTestIdp({ issuer: 'http://idp-b.test' });
    dir = await mkdtemp(join(tmpdir(), 'mno-linking-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    // Both apps log with the SDK's default JSON-lines logger.
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });

  it('docs/snippets (the guides): B gets its own app user, A keeps hers', async () => {
    const db = createDb();
    const storage = memoryAdapter();
    const mno = createAppMaestrano({ db, tenants: staticTenants(resolveTenants(marketplaces())), storage });
    expect((await login(mno, 'market-a', testIdp(), alice)).status).toBe(303);
    const aliceId = (await storage.users.get('market-a', 'usr-alice'))!.userId;

    const b = await login(mno, 'market-b', idpB, impostor);
    expect(b.status).toBe(303);
    const impostorId = (await storage.users.get('market-b', 'usr-999'))?.userId;
    expect(impostorId).toBeDefined();
    expect(impostorId).not.toBe(aliceId);
    expect(db.users.get(impostorId!)).toMatchObject({ tenant: 'market-b', email: 'alice@corp.com' });
    // B's session and memberships are on B's user; Alice's user is in A's company only.
    const sid = /app_sid=([^;]+)/.exec(b.headers.get('set-cookie') ?? '')?.[1];
    expect(db.sessions.get(sid!)?.userId).toBe(impostorId);
    expect([...db.memberships.keys()].filter((k) => k.startsWith(`${aliceId}:`))).toHaveLength(1);
    expect(await storage.users.findByUserId('market-b', aliceId)).toEqual([]);
  });

  it('packages/sdk/examples/app.ts: B gets its own app user, A keeps hers', async () => {
    const configFile = join(dir, 'example.maestrano.json');
    await writeFile(configFile, JSON.stringify({ marketplaces: marketplaces() }));
    const mno = await buildMaestrano(configFile);
    const { storage } = mno.runtime;
    expect((await login(mno, 'market-a', testIdp(), alice)).status).toBe(302);
    const aliceId = (await storage.users.get('market-a', 'usr-alice'))!.userId;

    const b = await login(mno, 'market-b', idpB, impostor);
    expect(b.status).toBe(302);
    const impostorId = (await storage.users.get('market-b', 'usr-999'))?.userId;
    expect(impostorId).toBeDefined();
    expect(impostorId).not.toBe(aliceId);
    expect(exampleUsers.get(aliceId)?.companies.size).toBe(1);
    const sid = /sid=([^;]+)/.exec(b.headers.get('set-cookie') ?? '')?.[1];
    expect(sessions.get(sid!)?.userId).toBe(impostorId);
  });
});
