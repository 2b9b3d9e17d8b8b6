// Marketplace B's IdP cannot sign in as a CRM user that marketplace A's IdP vouched for: an IdP
// can assert any uid and email. findUserByEmail refused such a user, but createUser reused the
// row for the same uid, so B asserting A's user's uid and email got a session on A's account.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger, Maestrano } from '@org/maestrano-sdk';
import { createTestIdp, type TestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningCrm, startCrm } from '../src/server.js';

const APP = 'https://crm.example.com';
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
let crm: RunningCrm;
let dataDir: string;
let idpA: TestIdp;
let idpB: TestIdp;

async function login(mno: Maestrano, tenant: string, idp: TestIdp, user: TestUser): Promise<Response> {
  const init = await mno.handler(new Request(`${APP}/maestrano/auth/saml/init/${tenant}?group_id=${user.groupUid}`));
  const cookie = init.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const { samlResponse, acsUrl } = idp.respondTo(init.headers.get('location')!, user);
  return mno.handler(new Request(acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: samlResponse }), headers: { cookie } }));
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'acme-crm-cross-tenant-'));
  idpA = createTestIdp({ issuer: 'https://idp.a.example' });
  idpB = createTestIdp({ issuer: 'https://idp.b.example' });
  const configFile = join(dataDir, 'maestrano.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      marketplaces: [
        idpA.marketplace({ name: 'mkt-a', appHost: APP, apiId: 'app-a', apiKey: 'key-a-0123456789abcdef' }),
        idpB.marketplace({ name: 'mkt-b', appHost: APP, apiId: 'app-b', apiKey: 'key-b-0123456789abcdef' }),
      ],
    }),
  );
  crm = await startCrm({ port: 0, configFile, dataDir, logger: quiet, worker: false });
}, 60_000);

afterAll(async () => {
  await crm?.stop().catch(() => undefined);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("marketplace B's IdP cannot take over a user of marketplace A", () => {
  it("B asserting the uid and email of A's user gets no session on that user's CRM account", async () => {
    const alice: TestUser = { uid: 'usr-alice', email: 'alice@corp.com', groupUid: 'cld-a', groupName: 'Alice Co' };
    expect((await login(crm.mno, 'mkt-a', idpA, alice)).status).toBe(303);
    const aliceRow = await crm.db.prisma.user.findUniqueOrThrow({ where: { email: 'alice@corp.com' } });

    // Marketplace B's IdP (another key, another operator) asserts Alice's uid and email.
    const forged: TestUser = { uid: 'usr-alice', email: 'Alice@Corp.com', groupUid: 'cld-evil', groupName: 'Evil Co' };
    const b = await login(crm.mno, 'mkt-b', idpB, forged);
    expect(b.status).not.toBe(303);
    expect(await crm.db.prisma.session.count({ where: { userId: aliceRow.id, tenant: 'mkt-b' } })).toBe(0);
    expect(await crm.db.prisma.membership.count({ where: { userId: aliceRow.id } })).toBe(1);
    expect(await crm.db.prisma.maestranoUser.count({ where: { tenant: 'mkt-b', userId: aliceRow.id } })).toBe(0);

    // Alice still signs in through her own marketplace.
    expect((await login(crm.mno, 'mkt-a', idpA, alice)).status).toBe(303);
  });

  it('B asserting a new uid with the email of A\'s user gets no session on that account either', async () => {
    const bob: TestUser = { uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-a', groupName: 'Alice Co' };
    expect((await login(crm.mno, 'mkt-a', idpA, bob)).status).toBe(303);
    const bobRow = await crm.db.prisma.user.findUniqueOrThrow({ where: { email: 'bob@corp.com' } });
    const b = await login(crm.mno, 'mkt-b', idpB, { uid: 'usr-mallory', email: 'bob@corp.com', groupUid: 'cld-evil-2', groupName: 'Evil Co 2' });
    expect(b.status).not.toBe(303);
    expect(await crm.db.prisma.session.count({ where: { userId: bobRow.id, tenant: 'mkt-b' } })).toBe(0);
  });
});

describe('signing out of a marketplace that has left the list', () => {
  it('ends the CRM session and goes to the login page instead of a 500', async () => {
    const carol: TestUser = { uid: 'usr-carol', email: 'carol@corp.com', groupUid: 'cld-c', groupName: 'Carol Co' };
    const signedIn = await login(crm.mno, 'mkt-a', idpA, carol);
    expect(signedIn.status).toBe(303);
    const cookie = signedIn.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const sid = /crm_sid=([^;]+)/.exec(cookie)?.[1];
    expect(sid).toBeTruthy();
    // The marketplace was removed from the list (a dev-platform refresh) while Carol was signed in.
    const row = await crm.db.prisma.session.findUniqueOrThrow({ where: { id: sid! } });
    await crm.db.prisma.session.update({ where: { id: sid! }, data: { maestrano: { ...(row.maestrano as object), tenant: 'mkt-gone' } } });

    const out = await fetch(`${crm.url}/logout`, { method: 'POST', headers: { cookie, origin: crm.url, 'content-type': 'application/x-www-form-urlencoded' }, body: '', redirect: 'manual' });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/login');
    expect(await crm.db.prisma.session.count({ where: { id: sid! } })).toBe(0);
  });
});

describe("a first login that failed after createUser leaves no account for another marketplace's IdP to take", () => {
  it("B asserting the email of A's user whose first login failed gets no session on that row, and A's retry signs in", async () => {
    const ann: TestUser = { uid: 'usr-ann', email: 'ann@corp.com', groupUid: 'cld-ann', groupName: 'Ann Co' };
    // Ann's first login through A: createUser writes her row, then addMembership fails (the
    // database refuses the membership), so the SDK records no uid for that row.
    await crm.db.prisma.$executeRawUnsafe(`CREATE TRIGGER test_fail_membership BEFORE INSERT ON crm_memberships BEGIN SELECT RAISE(ABORT, 'membership refused (test)'); END`);
    try {
      expect((await login(crm.mno, 'mkt-a', idpA, ann)).status).toBe(500);
    } finally {
      await crm.db.prisma.$executeRawUnsafe('DROP TRIGGER test_fail_membership');
    }
    const annRow = await crm.db.prisma.user.findUniqueOrThrow({ where: { email: 'ann@corp.com' } });
    expect(await crm.db.prisma.maestranoUser.count({ where: { userId: annRow.id } })).toBe(0);

    // Marketplace B's IdP asserts Ann's email for one of its own uids.
    const b = await login(crm.mno, 'mkt-b', idpB, { uid: 'usr-mallory-2', email: 'ann@corp.com', groupUid: 'cld-evil-3', groupName: 'Evil Co 3' });
    expect(b.status).not.toBe(303);
    expect(await crm.db.prisma.session.count({ where: { userId: annRow.id } })).toBe(0);
    expect(await crm.db.prisma.maestranoUser.count({ where: { userId: annRow.id } })).toBe(0);

    // Ann's retry through her own marketplace gets the row her first login created.
    expect((await login(crm.mno, 'mkt-a', idpA, ann)).status).toBe(303);
    expect((await crm.mno.runtime.storage.users.get('mkt-a', 'usr-ann'))?.userId).toBe(annRow.id);
    expect(await crm.db.prisma.session.count({ where: { userId: annRow.id, tenant: 'mkt-a' } })).toBe(1);
  });
});

describe('a first login that failed after createUser, retried with another email', () => {
  it('signs in on the row the first attempt created instead of failing on its id for good', async () => {
    const dan: TestUser = { uid: 'usr-dan', email: 'dan@corp.com', groupUid: 'cld-dan', groupName: 'Dan Co' };
    // Dan's first login writes his row, then addMembership fails: no uid is linked to it.
    await crm.db.prisma.$executeRawUnsafe(`CREATE TRIGGER test_fail_membership_dan BEFORE INSERT ON crm_memberships BEGIN SELECT RAISE(ABORT, 'membership refused (test)'); END`);
    try {
      expect((await login(crm.mno, 'mkt-a', idpA, dan)).status).toBe(500);
    } finally {
      await crm.db.prisma.$executeRawUnsafe('DROP TRIGGER test_fail_membership_dan');
    }
    const danRow = await crm.db.prisma.user.findUniqueOrThrow({ where: { email: 'dan@corp.com' } });

    // He changed his email at Maestrano before signing in again: the retry's createUser (same
    // idempotency key, so the same row id) finds no row with the new email.
    const renamed: TestUser = { ...dan, email: 'daniel@corp.com' };
    expect((await login(crm.mno, 'mkt-a', idpA, renamed)).status).toBe(303);
    expect((await crm.mno.runtime.storage.users.get('mkt-a', 'usr-dan'))?.userId).toBe(danRow.id);
    expect(await crm.db.prisma.session.count({ where: { userId: danRow.id, tenant: 'mkt-a' } })).toBe(1);
  });
});
