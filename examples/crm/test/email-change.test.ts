// A user who changes their email at Maestrano keeps their uid, and the CRM links an unknown uid
// to the CRM user holding the email it asserts (findUserByEmail). The CRM kept the email
// createUser stored, so once Ada moved to a new address, whoever registered her old one at
// Maestrano next was linked to Ada's account and signed in on it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger, Maestrano } from '@org/maestrano-sdk';
import { createTestIdp, type TestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningCrm, startCrm } from '../src/server.js';

const APP = 'https://crm.example.com';
const TENANT = 'mkt-a';
let crm: RunningCrm;
let dataDir: string;
let idp: TestIdp;
const warnings: string[] = [];
const logger: Logger = { debug() {}, info() {}, warn: (message) => void warnings.push(message), error() {} };

async function login(mno: Maestrano, user: TestUser): Promise<Response> {
  const init = await mno.handler(new Request(`${APP}/maestrano/auth/saml/init/${TENANT}?group_id=${user.groupUid}`));
  const cookie = init.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const { samlResponse, acsUrl } = idp.respondTo(init.headers.get('location')!, user);
  return mno.handler(new Request(acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: samlResponse }), headers: { cookie } }));
}

/** The CRM user a login response's session cookie belongs to. */
async function sessionUserId(response: Response): Promise<string> {
  const sid = /crm_sid=([^;]+)/.exec(response.headers.getSetCookie().join('; '))?.[1];
  expect(sid).toBeTruthy();
  return (await crm.db.prisma.session.findUniqueOrThrow({ where: { id: sid! } })).userId;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'acme-crm-email-change-'));
  idp = createTestIdp({ issuer: 'https://idp.a.example' });
  const configFile = join(dataDir, 'maestrano.json');
  writeFileSync(configFile, JSON.stringify({ marketplaces: [idp.marketplace({ name: TENANT, appHost: APP, apiId: 'app-a', apiKey: 'key-a-0123456789abcdef' })] }));
  crm = await startCrm({ port: 0, configFile, dataDir, logger, worker: false });
}, 60_000);

afterAll(async () => {
  await crm?.stop().catch(() => undefined);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('a user who changes their email at Maestrano', () => {
  it('keeps their account under the new email, and whoever registers the old one gets an account of their own', async () => {
    const ada: TestUser = { uid: 'usr-ada', email: 'ada.old@corp.com', firstName: 'Ada', lastName: 'Byron', groupUid: 'cld-ada', groupName: 'Ada Co' };
    const first = await login(crm.mno, ada);
    expect(first.status).toBe(303);
    const adaId = await sessionUserId(first);

    // Ada changes her email (and her last name) at Maestrano and signs in again.
    const again = await login(crm.mno, { ...ada, email: 'Ada.New@corp.com', lastName: 'Lovelace' });
    expect(again.status).toBe(303);
    expect(await sessionUserId(again)).toBe(adaId);

    // Someone else registers Ada's old address at Maestrano (a new uid) and signs in, in another
    // company of the same marketplace.
    const mallory = await login(crm.mno, { uid: 'usr-mallory', email: 'ada.old@corp.com', firstName: 'Mallory', groupUid: 'cld-mallory', groupName: 'Mallory Co' });
    expect(mallory.status).toBe(303);
    const malloryId = await sessionUserId(mallory);
    expect(malloryId).not.toBe(adaId);
    expect((await crm.mno.runtime.storage.users.get(TENANT, 'usr-mallory'))?.userId).toBe(malloryId);
    expect(await crm.db.prisma.session.count({ where: { userId: adaId } })).toBe(2);
    expect(await crm.db.prisma.membership.count({ where: { userId: adaId } })).toBe(1);
    // Ada's row has what Maestrano asserted last (lower-cased, as createUser stores it).
    const adaRow = await crm.db.prisma.user.findUniqueOrThrow({ where: { id: adaId } });
    expect({ email: adaRow.email, firstName: adaRow.firstName, lastName: adaRow.lastName }).toEqual({ email: 'ada.new@corp.com', firstName: 'Ada', lastName: 'Lovelace' });
  });

  it('still signs in when another CRM user holds the new email, and that user is left as it was', async () => {
    // A CRM user from before Maestrano, never linked to a uid, has the address Bob moves to.
    await crm.db.prisma.user.create({ data: { id: 'us_local_1', email: 'bob.new@corp.com', firstName: 'Local', lastName: 'User' } });
    const bob: TestUser = { uid: 'usr-bob', email: 'bob.old@corp.com', firstName: 'Bob', lastName: 'Smith', groupUid: 'cld-bob', groupName: 'Bob Co' };
    const first = await login(crm.mno, bob);
    expect(first.status).toBe(303);
    const bobId = await sessionUserId(first);

    warnings.length = 0;
    const again = await login(crm.mno, { ...bob, email: 'bob.new@corp.com', firstName: 'Robert' });
    expect(again.status).toBe(303);
    expect(await sessionUserId(again)).toBe(bobId);
    // The email cannot move (it is the CRM's unique key of another user); the names do.
    const bobRow = await crm.db.prisma.user.findUniqueOrThrow({ where: { id: bobId } });
    expect({ email: bobRow.email, firstName: bobRow.firstName, lastName: bobRow.lastName }).toEqual({ email: 'bob.old@corp.com', firstName: 'Robert', lastName: 'Smith' });
    expect(await crm.db.prisma.user.findUniqueOrThrow({ where: { id: 'us_local_1' } })).toMatchObject({ email: 'bob.new@corp.com', firstName: 'Local', lastName: 'User' });
    expect(warnings).toContain('crm: the email asserted by Maestrano belongs to another CRM user; the stored one is kept');
  });
});
