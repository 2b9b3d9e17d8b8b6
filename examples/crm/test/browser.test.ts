/**
 * The marketplace experience in a real browser (Debian Chromium through playwright-core):
 * a fresh seeded sandbox and a fresh CRM on loopback HTTP, real SAML, the in-process worker.
 * Screenshots of each step go to examples/crm/test-results/.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserStack,
  launchChromium,
  launchCrmFromSandbox,
  pickGroupAndUser,
  startBrowserStack,
  TENANT,
  waitForImport,
} from '../scripts/browser-stack.js';

const results = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-results');
const poll = { timeout: 30_000, interval: 200 } as const;

describe('Acme CRM in the browser – launched from the Maestrano sandbox', () => {
  let stack: BrowserStack;
  let browser: Browser;
  let page: Page;
  let target: Awaited<ReturnType<typeof pickGroupAndUser>>;

  const shot = (name: string) => page.screenshot({ path: join(results, `browser-${name}.png`), fullPage: true });
  const connecIdOf = async (contactId: string) => {
    const map = await stack.crm.mno.runtime.storage.idMaps.find({ tenant: TENANT, groupId: target.groupId, entity: 'contacts' }, { localId: contactId });
    if (!map?.connecId) throw new Error(`contact ${contactId} has no Connec! id`);
    return map.connecId;
  };
  const recordPage = (connecId: string) => `${stack.sandbox.url}/ui/groups/${target.groupId}/connec/people/${connecId}`;

  beforeAll(async () => {
    mkdirSync(results, { recursive: true });
    stack = await startBrowserStack({ seed: 200 });
    target = await pickGroupAndUser(stack);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('launch from the sandbox UI, pick a user, land signed in on the imported contacts', { timeout: 90_000 }, async () => {
    await launchCrmFromSandbox(page, stack, target);
    expect(new URL(page.url()).pathname).toBe('/contacts');
    const user = await stack.sandbox.admin.getUser(target.userId);
    const who = await page.locator('nav .who').textContent();
    expect(who).toContain(`${user.name} ${user.surname}`);
    expect(who).toContain(target.groupName);

    await waitForImport(stack, target.groupId, target.people);
    await page.reload();
    await expect(page.locator('h2 small').textContent()).resolves.toBe(`(${target.people})`);
    const rows = page.locator('table#contacts tr[data-contact-id]');
    expect(await rows.count()).toBe(Math.min(target.people, 200));

    // The rows are the group's Connec! people.
    const people = await stack.sandbox.admin.listRecords(target.groupId, 'people', { limit: 10_000 });
    const expected = people.map((p) => [p.first_name, p.last_name].filter(Boolean).join(' ')).sort();
    const shown = (await rows.locator('td:first-child').allTextContents()).map((t) => t.trim()).sort();
    expect(shown).toEqual(expected);
    await shot('1-contacts-after-sso');
  });

  it('a contact edited in the CRM arrives in Connec! (sandbox record page and admin API)', { timeout: 60_000 }, async () => {
    const row = page.locator('table#contacts tr[data-contact-id]').first();
    const contactId = (await row.getAttribute('data-contact-id')) ?? '';
    await row.locator('a').click();
    await page.waitForURL(`${stack.crm.url}/contacts/${contactId}`);
    await page.locator('#jobTitle').fill('Head of Browser Testing');
    await page.locator('#phone').fill('+61 2 9999 0000');
    await page.getByRole('button', { name: 'Save and share with Connec!' }).click();
    await page.waitForURL(`${stack.crm.url}/contacts?saved=1`);
    await expect(page.locator('.flash').textContent()).resolves.toBe('Contact saved and shared with Connec!.');
    await expect(page.locator(`tr[data-contact-id="${contactId}"]`).textContent()).resolves.toContain('Head of Browser Testing');
    await shot('2-crm-contact-saved');

    const connecId = await connecIdOf(contactId);
    const remote = await stack.sandbox.admin.getRecord(target.groupId, 'people', connecId);
    expect(remote.job_title).toBe('Head of Browser Testing');
    expect(remote.phone_work).toMatchObject({ landline: '+61 2 9999 0000' });

    await page.goto(recordPage(connecId));
    const json = JSON.parse(await page.locator('#record-json').inputValue()) as Record<string, unknown>;
    expect(json.job_title).toBe('Head of Browser Testing');
    await shot('3-sandbox-record-pushed');
  });

  it('a record edited in the sandbox UI updates the CRM', { timeout: 60_000 }, async () => {
    const contact = await stack.crm.db.prisma.contact.findFirstOrThrow({
      where: { company: { tenant: TENANT, groupId: target.groupId }, NOT: { jobTitle: 'Head of Browser Testing' } },
      orderBy: { id: 'asc' },
    });
    const connecId = await connecIdOf(contact.id);
    await page.goto(recordPage(connecId));
    const editor = page.locator('#record-json');
    const record = JSON.parse(await editor.inputValue()) as Record<string, unknown>;
    await editor.fill(JSON.stringify({ ...record, job_title: 'Edited in the sandbox' }, null, 2));
    await page.locator('#save-record').click();
    await page.waitForLoadState();
    expect(JSON.parse(await page.locator('#record-json').inputValue())).toMatchObject({ job_title: 'Edited in the sandbox' });

    // The sandbox notifies the CRM; the worker applies it.
    await expect
      .poll(async () => {
        await page.goto(`${stack.crm.url}/contacts/${contact.id}`);
        return page.locator('#jobTitle').inputValue();
      }, poll)
      .toBe('Edited in the sandbox');
    await expect(page.locator('#lastName').inputValue()).resolves.toBe(contact.lastName);
    const stored = await stack.crm.db.prisma.contact.findUniqueOrThrow({ where: { id: contact.id } });
    expect(stored.jobTitle).toBe('Edited in the sandbox');
    await shot('4-crm-updated-from-sandbox');
  });

  it('cancelling the group in the sandbox UI refuses access in the CRM', { timeout: 60_000 }, async () => {
    await page.goto(`${stack.sandbox.url}/ui/groups/${target.groupId}`);
    await page.getByRole('button', { name: 'Cancel group' }).click();
    await expect(page.locator('.delivered').textContent()).resolves.toContain('Group cancelled');
    expect((await stack.sandbox.admin.getGroup(target.groupId)).status).toBe('terminated');
    await shot('5-sandbox-group-cancelled');

    // The group webhook cancelled the company and ended its sessions: the CRM tells the user why.
    const { prisma } = stack.crm.db;
    await expect
      .poll(async () => (await prisma.company.findUniqueOrThrow({ where: { tenant_groupId: { tenant: TENANT, groupId: target.groupId } } })).status, poll)
      .toBe('cancelled');
    const { id: companyId } = await prisma.company.findUniqueOrThrow({ where: { tenant_groupId: { tenant: TENANT, groupId: target.groupId } } });
    expect(await prisma.session.count({ where: { companyId, endedReason: null } })).toBe(0);
    const cancelledMessage = 'This company no longer has access to Acme CRM (its Maestrano subscription was cancelled).';
    const refusal = await page.goto(`${stack.crm.url}/contacts`);
    expect(refusal?.status()).toBe(403);
    await expect(page.locator('#refused').textContent()).resolves.toBe(cancelledMessage);
    expect(await page.locator('table#contacts').count()).toBe(0);
    await shot('6-crm-access-refused');

    // Launching it again is refused by Maestrano: the group no longer has the app.
    await page.goto(`${stack.sandbox.url}/ui/groups`);
    const [refused] = await Promise.all([
      page.waitForResponse((res) => new URL(res.url()).pathname === '/api/v1/auth/saml'),
      page.locator(`a[data-launch="${target.groupId}"]`).click(),
    ]);
    expect(refused.status()).toBe(403);
    await expect(page.locator('h1').textContent()).resolves.toBe('Access Denied');
    await shot('7-relaunch-refused');
    expect(await prisma.session.count({ where: { companyId, endedReason: null } })).toBe(0);
    await page.goto(`${stack.crm.url}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await expect(page.locator('p.error').textContent()).resolves.toBe(cancelledMessage);
  });
});
