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
// idempotency key, a user of two marketplaces (refused by the second) and a user of two groups.
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
  it('answers its readiness probe with the SDK storage healthy (SQLite, migrated), without a session', async () => {
    const res = await fetch(`${crmUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, storage: { ok: true, adapter: 'prisma' }, tenants: 2 });
  });

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
    // A plain signed number is read as itself: exported intact. A phone number starting with a
    // sign would be computed (+1-800-555-0100 is -1454) or refused as a formula: kept as text.
    await crm.db.prisma.contact.create({
      data: { id: `ct_csv_phone_${Date.now()}`, companyId: company.id, firstName: 'Phil', lastName: 'Phone', phone: '-12.5', jobTitle: '+SUM(1,2)', email: '+1-800-555-0100' },
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
      `Phil,Phone,'+1-800-555-0100,-12.5,"'+SUM(1,2)",`,
      '',
    ]);
    expect(await admin.listBills(group.id)).toHaveLength(1);
    // The billing page links the file; another company cannot fetch it; an unbilled key is no export.
    expect(await (await fetch(`${crmUrl}/billing`, { headers: { cookie } })).text()).toContain(`href="/billing/exports/${key}.csv"`);
    const other = await signedInOwner();
    expect((await fetch(`${crmUrl}${location}`, { headers: { cookie: other.cookie } })).status).toBe(404);
    expect((await fetch(`${crmUrl}/billing/exports/${await exportKey(cookie)}.csv`, { headers: { cookie } })).status).toBe(404);
  });

  it('a contact saved without a last name comes back with what was typed, the error tied to the field', async () => {
    const { group, cookie } = await signedInOwner();
    const company = await crm.db.prisma.company.findUniqueOrThrow({ where: { tenant_groupId: { tenant: TENANT, groupId: group.id } } });
    const contact = await crm.db.prisma.contact.create({
      data: { id: `ct_form_${Date.now()}`, companyId: company.id, firstName: 'Stored', lastName: 'Stored', email: 'stored@example.com', jobTitle: 'Stored job' },
    });
    const edit = await (await fetch(`${crmUrl}/contacts/${contact.id}`, { headers: { cookie } })).text();
    expect(edit).toContain('<input id="lastName" name="lastName" value="Stored" required>');
    const res = await fetch(`${crmUrl}/contacts/${contact.id}`, {
      method: 'POST',
      headers: { cookie, origin: crmUrl, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ firstName: 'Typed <first>', lastName: '   ', email: 'typed@example.com', phone: '+1 555 4434', jobTitle: 'Typed job' }),
      redirect: 'manual',
    });
    expect(res.status).toBe(400);
    const page = await res.text();
    expect(page).toContain('<p class="error" id="form-error" role="alert">Last name is required.</p>');
    expect(page).toContain('<input id="lastName" name="lastName" value="" required aria-invalid="true" aria-describedby="form-error">');
    for (const [name, value] of [
      ['firstName', 'Typed &lt;first&gt;'],
      ['email', 'typed@example.com'],
      ['phone', '+1 555 4434'],
      ['jobTitle', 'Typed job'],
    ]) {
      expect(page).toContain(`<input id="${name}" name="${name}" value="${value}">`);
    }
    expect(page).not.toContain('Stored');
    // Nothing was saved.
    expect(await crm.db.prisma.contact.findUniqueOrThrow({ where: { id: contact.id } })).toMatchObject({ firstName: 'Stored', lastName: 'Stored', jobTitle: 'Stored job' });
  });

  it('a removed member and a cancelled company are told why on their next request; the ended session grants nothing', async () => {
    const contacts = (cookie: string) => fetch(`${crmUrl}/contacts`, { headers: { cookie }, redirect: 'manual' });
    const waitUntil = async (what: string, done: () => Promise<boolean>) => {
      const deadline = Date.now() + 10_000;
      while (!(await done())) {
        if (Date.now() > deadline) throw new Error(`${what} never reached the CRM`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const { group, cookie: ownerCookie } = await signedInOwner();
    const company = await crm.db.prisma.company.findUniqueOrThrow({ where: { tenant_groupId: { tenant: TENANT, groupId: group.id } } });
    const email = `remy.${Date.now()}@example.com`;
    const member = await admin.createUser({ name: 'Remy', surname: 'Removed', email, memberships: [{ groupId: group.id, role: 'Member' }] });
    const login = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: member.id, groupId: group.id });
    expect(login.status).toBe(303);
    const cookie = login.cookie ?? '';
    expect((await contacts(cookie)).status).toBe(200);

    await admin.removeMember(group.id, member.id);
    const crmUser = await crm.db.prisma.user.findUniqueOrThrow({ where: { email } });
    await waitUntil('the removal', async () => (await crm.db.prisma.membership.count({ where: { userId: crmUser.id, companyId: company.id, active: true } })) === 0);
    // Every request says why (not only the first), never with the contacts; so does the sign-in page.
    for (let i = 0; i < 2; i++) {
      const refused = await contacts(cookie);
      expect(refused.status).toBe(403);
      const page = await refused.text();
      expect(page).toContain('Your access to this company was removed on Maestrano.');
      expect(page).not.toContain('id="contacts"');
    }
    expect(await (await fetch(`${crmUrl}/login`, { headers: { cookie } })).text()).toContain('Your access to this company was removed on Maestrano.');
    expect(await (await fetch(`${crmUrl}/login`)).text()).not.toContain('removed on Maestrano');
    // Invited again, the member signs in anew; the ended session stays ended. Only a response
    // issued after the removal re-adds a member, and the IdP's IssueInstant is in whole seconds:
    // this sign-in starts once a second has begun after the SDK recorded the removal.
    let removedAt = 0;
    await waitUntil('the removal in the SDK', async () => {
      const [membership] = await crm.mno.runtime.storage.users.listMemberships(TENANT, { uid: member.id, groupId: group.id });
      removedAt = membership?.status === 'removed' ? membership.updatedAt.getTime() : 0;
      return removedAt > 0;
    });
    await waitUntil('a second after the removal', async () => Date.now() >= Math.ceil(removedAt / 1000) * 1000);
    await admin.addMember(group.id, member.id);
    expect((await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: member.id, groupId: group.id })).status).toBe(303);
    expect((await crm.db.prisma.membership.findUniqueOrThrow({ where: { userId_companyId: { userId: crmUser.id, companyId: company.id } } })).active).toBe(true);
    expect((await contacts(cookie)).status).toBe(403);

    await admin.cancelGroup(group.id);
    await waitUntil('the cancellation', async () => (await crm.db.prisma.company.findUniqueOrThrow({ where: { id: company.id } })).status === 'cancelled');
    const cancelled = await contacts(ownerCookie);
    expect(cancelled.status).toBe(403);
    expect(await cancelled.text()).toContain('its Maestrano subscription was cancelled');
    expect((await fetch(`${crmUrl}/billing`, { headers: { cookie: ownerCookie }, redirect: 'manual' })).status).toBe(403);
    expect(await crm.db.prisma.session.count({ where: { companyId: company.id, endedReason: null } })).toBe(0);
  });

  it('while the initial import runs, the contact and account lists say so, with a refresh link', async () => {
    const group = await admin.createGroup({ name: `Importing ${Date.now()}`, marketplace: TENANT });
    await admin.createRecord(group.id, 'people', { first_name: 'Ivy', last_name: 'Importing' });
    // Connec! answers the group's people list slowly: the import is still running after sign-in.
    const slow = await admin.addFault({ path: `/api/v2/${group.id}/people`, method: 'GET', kind: 'latency', latencyMs: 3_000, count: 1 });
    try {
      const user = await admin.createUser({ name: 'Ida', surname: 'Import', email: `ida.${Date.now()}@example.com`, memberships: [{ groupId: group.id, role: 'Admin' }] });
      const login = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: user.id, groupId: group.id });
      expect(login.status).toBe(303);
      const cookie = login.cookie ?? '';
      const contacts = await (await fetch(`${crmUrl}/contacts`, { headers: { cookie } })).text();
      expect(contacts).toContain('<p class="notice" id="import-running" role="status">Import from Connec! in progress');
      expect(contacts).toContain('<a href="/contacts">Refresh</a>');
      const accounts = await (await fetch(`${crmUrl}/accounts`, { headers: { cookie } })).text();
      expect(accounts).toContain('id="import-running"');
      expect(accounts).toContain('<a href="/accounts">Refresh</a>');

      const deadline = Date.now() + 20_000;
      const key = { tenant: TENANT, groupId: group.id, entity: 'contacts', kind: 'import' };
      while (!(await crm.mno.runtime.storage.cursors.get(key))?.complete) {
        if (Date.now() > deadline) throw new Error('the import never finished');
        await new Promise((r) => setTimeout(r, 50));
      }
      const after = await (await fetch(`${crmUrl}/contacts`, { headers: { cookie } })).text();
      expect(after).not.toContain('import-running');
      expect(after).toContain('Ivy Importing');
      expect(await (await fetch(`${crmUrl}/accounts`, { headers: { cookie } })).text()).not.toContain('import-running');
    } finally {
      await admin.removeFault(slow.id).catch(() => undefined);
    }
  });

  it("when Maestrano switches the company's sync off (toggle_sync), the lists say so instead of an import that never ends", async () => {
    const group = await admin.createGroup({ name: `Toggled ${Date.now()}`, marketplace: TENANT });
    const user = await admin.createUser({ name: 'Tom', surname: 'Toggle', email: `tom.${Date.now()}@example.com`, memberships: [{ groupId: group.id, role: 'Admin' }] });
    const login = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: user.id, groupId: group.id });
    expect(login.status).toBe(303);
    const cookie = login.cookie ?? '';
    const market = sandbox.credentials.marketplaces.find((m) => m.name === TENANT);
    if (!market) throw new Error(`no ${TENANT} marketplace`);
    const toggle = () =>
      fetch(`${crmUrl}/maestrano/${TENANT}/synchronizations/toggle_sync`, {
        method: 'PUT',
        headers: { authorization: `Basic ${Buffer.from(`${market.apiId}:${market.apiKey}`).toString('base64')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ group_id: group.id }),
      });
    const off = await toggle();
    expect(off.status).toBe(200);
    expect(await off.json()).toMatchObject({ group_id: group.id, sync_enabled: false, status: 'DISABLED' });
    for (const path of ['/contacts', '/accounts']) {
      const page = await (await fetch(`${crmUrl}${path}`, { headers: { cookie } })).text();
      expect(page).toContain('<p class="notice" id="sync-off" role="status">Sync with Connec! is switched off');
      expect(page).not.toContain('import-running');
    }
    const on = await toggle();
    expect(await on.json()).toMatchObject({ sync_enabled: true });
    expect(await (await fetch(`${crmUrl}/contacts`, { headers: { cookie } })).text()).not.toContain('sync-off');
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

  it('when Maestrano cannot confirm the session, / says so (503) instead of sending the user to sign in again', async () => {
    const { cookie } = await signedInOwner();
    const sid = /crm_sid=([^;]+)/.exec(cookie)?.[1] ?? '';
    // The session's re-check is due, and the IdP does not answer it.
    const row = await crm.db.prisma.session.findUniqueOrThrow({ where: { id: sid } });
    const stored = row.maestrano as Record<string, unknown>;
    await crm.db.prisma.session.update({ where: { id: sid }, data: { maestrano: { ...stored, recheck: new Date(Date.now() - 1_000).toISOString() } } });
    const fault = await admin.addFault({ path: '/api/v1/auth/saml/*', method: 'GET', kind: 'status', status: 503 });
    try {
      const res = await fetch(`${crmUrl}/`, { headers: { cookie }, redirect: 'manual' });
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('could not be confirmed');
      // The session is kept (not ended, not deleted): once the platform answers, the same cookie works.
      expect(await crm.db.prisma.session.findUnique({ where: { id: sid } })).toMatchObject({ endedReason: null });
    } finally {
      await admin.removeFault(fault.id);
    }
  });

  it('a page opened without a session is where signing in again lands, not the contact list', async () => {
    const { group, user } = await signedInOwner();
    const asked = await fetch(`${crmUrl}/accounts?page=2`, { redirect: 'manual' });
    expect(asked.status).toBe(303);
    expect(asked.headers.get('location')).toBe(`/login?next=${encodeURIComponent('/accounts?page=2')}`);
    const login = await (await fetch(new URL(asked.headers.get('location') ?? '', crmUrl))).text();
    expect(login).toContain(`return_to=${encodeURIComponent('/accounts?page=2')}`);
    const again = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: user.id, groupId: group.id, returnTo: '/accounts?page=2' });
    expect(again.status).toBe(303);
    expect(again.location).toBe('/accounts?page=2');
    // Another origin is never a destination: the sign-in page drops it, and so does the SDK.
    expect(await (await fetch(`${crmUrl}/login?next=${encodeURIComponent('//evil.example/x')}`)).text()).not.toContain('evil.example');
    const offsite = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: user.id, groupId: group.id, returnTo: 'https://evil.example/x' });
    expect(offsite.location).toBe('/contacts');
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

  it('a user of one marketplace is not signed in through another, even with the same uid and email', async () => {
    // Each marketplace's IdP vouches for its own users only, and any IdP can assert any uid and
    // email: one CRM user belongs to one marketplace (it was shared, uid matched by createUser).
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
    expect(loginA.status).toBe(303);
    expect(loginB.status).not.toBe(303);
    expect(loginB.cookie).toBeNull();
    const crmUser = await crm.db.prisma.user.findUniqueOrThrow({ where: { email } });
    expect(await crm.db.prisma.membership.count({ where: { userId: crmUser.id } })).toBe(1);
    expect(await crm.db.prisma.session.count({ where: { userId: crmUser.id, tenant: TENANT_2 } })).toBe(0);
    expect((await fetch(`${crmUrl}/contacts`, { headers: { cookie: loginA.cookie ?? '' }, redirect: 'manual' })).status).toBe(200);
  });

  it('a user in two groups of a marketplace removed from one keeps access to the other', async () => {
    const groupA = await admin.createGroup({ name: `Two A ${Date.now()}`, marketplace: TENANT });
    const groupB = await admin.createGroup({ name: `Two B ${Date.now()}`, marketplace: TENANT });
    const email = `two.groups.${Date.now()}@example.com`;
    const user = await admin.createUser({
      name: 'Tess',
      surname: 'Two',
      email,
      memberships: [
        { groupId: groupA.id, role: 'Member' },
        { groupId: groupB.id, role: 'Member' },
      ],
    });
    const loginA = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: user.id, groupId: groupA.id });
    const loginB = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: user.id, groupId: groupB.id });
    expect([loginA.status, loginB.status]).toEqual([303, 303]);
    // One CRM user with a membership in each group's company.
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
