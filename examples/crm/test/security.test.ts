import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@org/maestrano-sdk';
import { type Sandbox, SandboxAdmin, startSandbox } from '@org/maestrano-sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ssoLogin } from '../src/demo/checklist.js';
import { type RunningCrm, startCrm } from '../src/server.js';

// The CRM's own request handling, over real HTTP against a real sandbox: CSRF, the export's
// idempotency key, and a user shared by two marketplaces.
const TENANT = 'sandbox';
const TENANT_2 = 'acme-eu';
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

let sandbox: Sandbox;
let crm: RunningCrm;
let admin: SandboxAdmin;
let crmUrl: string;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'acme-crm-security-'));
  const crmPort = await freePort();
  crmUrl = `http://127.0.0.1:${crmPort}`;
  sandbox = await startSandbox({ port: 0, appUrl: crmUrl, seed: 0, marketplaces: [TENANT, TENANT_2] });
  admin = new SandboxAdmin(sandbox.url);
  const env = sandbox.credentials.environment;
  const doc = await fetch(sandbox.marketplacesUrl, {
    headers: { authorization: `Basic ${Buffer.from(`${env.apiKey}:${env.apiSecret}`).toString('base64')}` },
  });
  const configFile = join(dataDir, 'maestrano.json');
  writeFileSync(configFile, await doc.text());
  crm = await startCrm({ port: crmPort, configFile, dataDir, logger: quiet, workerConcurrency: 2 });
}, 60_000);

afterAll(async () => {
  await crm?.stop().catch(() => undefined);
  await sandbox?.stop().catch(() => undefined);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function signedInOwner(marketplace = TENANT, currency?: string) {
  const group = await admin.createGroup({ name: `Sec ${Date.now()}`, marketplace, ...(currency ? { currency } : {}) });
  const user = await admin.createUser({ name: 'Sam', surname: 'Secure', email: `sam.${Date.now()}@example.com`, memberships: [{ groupId: group.id, role: 'Admin' }] });
  const login = await ssoLogin(crmUrl, admin, { tenant: marketplace, userId: user.id, groupId: group.id });
  expect(login.status).toBe(303);
  expect(login.cookie).toBeTruthy();
  return { group, user, cookie: login.cookie as string };
}

async function exportKey(cookie: string): Promise<string> {
  const page = await (await fetch(`${crmUrl}/billing`, { headers: { cookie } })).text();
  const key = /name="key" value="(ch_[0-9a-f]+)"/.exec(page)?.[1];
  expect(key).toBeTruthy();
  return key as string;
}

const postExport = (cookie: string, key: string, origin: string | null) =>
  fetch(`${crmUrl}/billing/export`, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...(origin ? { origin } : {}) },
    body: new URLSearchParams({ key }),
    redirect: 'manual',
  });

describe('Acme CRM request handling', () => {
  it('refuses a form posted from another origin (CSRF) and bills nothing', async () => {
    const { group, cookie } = await signedInOwner();
    const key = await exportKey(cookie);
    for (const origin of ['http://evil.example', null]) {
      const res = await postExport(cookie, key, origin);
      expect(res.status).toBe(403);
    }
    expect(await crm.db.prisma.charge.count({ where: { id: key } })).toBe(0);
    expect(await admin.listBills(group.id)).toHaveLength(0);
    // The same form from the CRM's own origin goes through.
    expect((await postExport(cookie, key, crmUrl)).status).toBe(303);
    expect(await admin.listBills(group.id)).toHaveLength(1);
  });

  it('bills a double-submitted export form once; a fresh page renders a new key', async () => {
    const { group, cookie } = await signedInOwner();
    const key = await exportKey(cookie);
    const answers = await Promise.all([postExport(cookie, key, crmUrl), postExport(cookie, key, crmUrl)]);
    expect(answers.map((r) => r.status)).toEqual([303, 303]);
    expect((await postExport(cookie, key, crmUrl)).status).toBe(303);
    const bills = await admin.listBills(group.id);
    expect(bills).toHaveLength(1);
    expect((await crm.db.prisma.charge.findUniqueOrThrow({ where: { id: key } })).billId).toBe(bills[0]?.id);
    const next = await exportKey(cookie);
    expect(next).not.toBe(key);
    expect((await postExport(cookie, next, crmUrl)).status).toBe(303);
    expect(await admin.listBills(group.id)).toHaveLength(2);
    // A key that is not one the CRM renders is refused.
    expect((await postExport(cookie, 'ch_not-a-key', crmUrl)).status).toBe(400);
  });

  it('the billed export downloads the CSV (formula cells neutralised); another company gets 404', async () => {
    const { group, cookie } = await signedInOwner();
    const company = await crm.db.prisma.company.findUniqueOrThrow({ where: { tenant_groupId: { tenant: TENANT, groupId: group.id } } });
    await crm.db.prisma.contact.create({
      data: { id: `ct_csv_${Date.now()}`, companyId: company.id, firstName: '=HYPERLINK("http://evil.example")', lastName: 'Doe, "Jr"', email: 'jd@example.com' },
    });
    const key = await exportKey(cookie);
    const posted = await postExport(cookie, key, crmUrl);
    expect(posted.status).toBe(303);
    const location = posted.headers.get('location');
    expect(location).toBe(`/billing/exports/${key}.csv`);
    const file = await fetch(`${crmUrl}${location}`, { headers: { cookie } });
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(file.headers.get('content-disposition')).toMatch(/^attachment; filename="contacts-\d{4}-\d{2}-\d{2}\.csv"$/);
    expect((await file.text()).split('\r\n')).toEqual([
      'First name,Last name,Email,Phone,Job title,Account',
      `"'=HYPERLINK(""http://evil.example"")","Doe, ""Jr""",jd@example.com,,,`,
      '',
    ]);
    expect(await admin.listBills(group.id)).toHaveLength(1);
    // The billing page links the file; another company cannot fetch it; an unbilled key is no export.
    expect(await (await fetch(`${crmUrl}/billing`, { headers: { cookie } })).text()).toContain(`href="/billing/exports/${key}.csv"`);
    const other = await signedInOwner();
    expect((await fetch(`${crmUrl}${location}`, { headers: { cookie: other.cookie } })).status).toBe(404);
    expect((await fetch(`${crmUrl}/billing/exports/${await exportKey(cookie)}.csv`, { headers: { cookie } })).status).toBe(404);
  });

  it('clearing a contact field in the CRM clears it in Connec! too', async () => {
    const group = await admin.createGroup({ name: `Clear ${Date.now()}`, marketplace: TENANT });
    const person = await admin.createRecord(group.id, 'people', {
      first_name: 'Ines',
      last_name: 'Clear',
      job_title: 'Engineer',
      email: { address: 'ines.clear@example.com' },
    });
    const user = await admin.createUser({ name: 'Cleo', surname: 'Clear', email: `cleo.${Date.now()}@example.com`, memberships: [{ groupId: group.id, role: 'Admin' }] });
    const login = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: user.id, groupId: group.id });
    expect(login.status).toBe(303);
    const company = await crm.db.prisma.company.findUniqueOrThrow({ where: { tenant_groupId: { tenant: TENANT, groupId: group.id } } });
    const deadline = Date.now() + 20_000;
    let contact = await crm.db.prisma.contact.findFirst({ where: { companyId: company.id, lastName: 'Clear' } });
    while (!contact) {
      if (Date.now() > deadline) throw new Error('the import never brought the contact in');
      await new Promise((r) => setTimeout(r, 50));
      contact = await crm.db.prisma.contact.findFirst({ where: { companyId: company.id, lastName: 'Clear' } });
    }
    expect(contact).toMatchObject({ email: 'ines.clear@example.com', jobTitle: 'Engineer' });
    const saved = await fetch(`${crmUrl}/contacts/${contact.id}`, {
      method: 'POST',
      headers: { cookie: login.cookie ?? '', origin: crmUrl, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ firstName: 'Ines', lastName: 'Clear', email: '', phone: '', jobTitle: '' }),
      redirect: 'manual',
    });
    expect(saved.status).toBe(303);
    const stored = (await admin.getRecord(group.id, 'people', String(person.id))) as Record<string, unknown>;
    expect(stored.job_title ?? null).toBeNull();
    expect((stored.email as { address?: unknown } | undefined)?.address ?? null).toBeNull();
    expect(stored.last_name).toBe('Clear');
  });

  it("bills the export in the group's currency, as the subscription is", async () => {
    const { group, cookie } = await signedInOwner(TENANT, 'USD');
    const key = await exportKey(cookie);
    expect((await postExport(cookie, key, crmUrl)).status).toBe(303);
    const bills = await admin.listBills(group.id);
    expect(bills).toHaveLength(1);
    expect(bills[0]?.currency).toBe('USD');
    expect((await crm.db.prisma.charge.findUniqueOrThrow({ where: { id: key } })).currency).toBe('USD');
    const company = await crm.db.prisma.company.findUniqueOrThrow({ where: { tenant_groupId: { tenant: TENANT, groupId: group.id } } });
    expect(company.currency).toBe('USD');
  });

  it('a failed sign-in shows a page with the reason and a way back, not a bare JSON error', async () => {
    const res = await fetch(`${crmUrl}/maestrano/auth/saml/consume/${TENANT}`, {
      method: 'POST',
      body: new URLSearchParams({ SAMLResponse: Buffer.from('<not-saml/>').toString('base64') }),
      redirect: 'manual',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('text/html');
    const page = await res.text();
    expect(page).toContain('Sign-in through Maestrano failed');
    expect(page).toContain('href="/login"');
  });

  it('links an unknown Maestrano user to the CRM user of the same mailbox whatever the case of its email', async () => {
    const { group } = await signedInOwner();
    const stamp = Date.now();
    const legacy = await crm.db.prisma.user.create({ data: { id: `us_case_${stamp}`, email: `casey.${stamp}@example.com`, firstName: 'Casey', lastName: 'Case' } });
    const users = await crm.db.prisma.user.count();
    const mnoUser = await admin.createUser({ name: 'Casey', surname: 'Case', email: `Casey.${stamp}@Example.COM`, memberships: [{ groupId: group.id, role: 'Member' }] });
    const login = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: mnoUser.id, groupId: group.id });
    expect(login.status).toBe(303);
    expect((await crm.mno.runtime.storage.users.get(TENANT, mnoUser.id))?.userId).toBe(legacy.id);
    expect(await crm.db.prisma.user.count()).toBe(users);
    // A new Maestrano user's email is stored lower-cased, so a later case variant finds it too.
    const other = await admin.createUser({ name: 'Dana', surname: 'Upper', email: `Dana.${stamp}@Example.COM`, memberships: [{ groupId: group.id, role: 'Member' }] });
    expect((await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: other.id, groupId: group.id })).status).toBe(303);
    expect(await crm.db.prisma.user.findUnique({ where: { email: `dana.${stamp}@example.com` } })).not.toBeNull();
  });

  it('a user in two marketplaces removed from the only group of one keeps access to the other', async () => {
    const groupA = await admin.createGroup({ name: `Shared A ${Date.now()}`, marketplace: TENANT });
    const groupB = await admin.createGroup({ name: `Shared B ${Date.now()}`, marketplace: TENANT_2 });
    const email = `shared.${Date.now()}@example.com`;
    const user = await admin.createUser({
      name: 'Shay',
      surname: 'Shared',
      email,
      memberships: [
        { groupId: groupA.id, role: 'Member' },
        { groupId: groupB.id, role: 'Member' },
      ],
    });
    const loginA = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: user.id, groupId: groupA.id });
    const loginB = await ssoLogin(crmUrl, admin, { tenant: TENANT_2, userId: user.id, groupId: groupB.id });
    expect([loginA.status, loginB.status]).toEqual([303, 303]);
    // One CRM user (linked by email) with a membership in each marketplace's company.
    const crmUser = await crm.db.prisma.user.findUniqueOrThrow({ where: { email } });
    expect(await crm.db.prisma.membership.count({ where: { userId: crmUser.id, active: true } })).toBe(2);

    await admin.removeMember(groupB.id, user.id);
    const deadline = Date.now() + 10_000;
    while ((await crm.db.prisma.membership.count({ where: { userId: crmUser.id, active: true } })) !== 1) {
      if (Date.now() > deadline) throw new Error('the removal never reached the CRM');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await crm.db.prisma.user.findUniqueOrThrow({ where: { email } })).status).toBe('active');
    expect((await fetch(`${crmUrl}/contacts`, { headers: { cookie: loginA.cookie ?? '' }, redirect: 'manual' })).status).toBe(200);
    expect((await fetch(`${crmUrl}/contacts`, { headers: { cookie: loginB.cookie ?? '' }, redirect: 'manual' })).status).not.toBe(200);
  });
});
