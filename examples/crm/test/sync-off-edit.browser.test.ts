// A contact edited in the CRM while Maestrano has switched the company's sync off (toggle_sync):
// the push is skipped, the CRM says so, and the edit reaches Connec! once the sync is switched
// back on (the SDK's catch-up job). Real Chromium, launched from the sandbox's UI.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserStack, launchChromium, launchCrmFromSandbox, pickGroupAndUser, startBrowserStack, TENANT, waitForImport } from '../scripts/browser-stack.js';

describe('a contact edited while the sync is off', () => {
  let stack: BrowserStack;
  let browser: Browser;
  let page: Page;
  let target: Awaited<ReturnType<typeof pickGroupAndUser>>;

  beforeAll(async () => {
    stack = await startBrowserStack({ seed: 60 });
    target = await pickGroupAndUser(stack);
    browser = await launchChromium();
    page = await browser.newPage();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('is saved locally, and the CRM says it is shared once sync is back on', { timeout: 90_000 }, async () => {
    await launchCrmFromSandbox(page, stack, target);
    await waitForImport(stack, target.groupId, target.people);
    const toggled = await stack.sandbox.admin.syncControl({ groupId: target.groupId, action: 'toggle' });
    expect(toggled.body).toMatchObject({ sync_enabled: false });
    await page.goto(`${stack.crm.url}/contacts`);
    await expect(page.locator('#sync-off').count()).resolves.toBe(1);

    const row = page.locator('table#contacts tr[data-contact-id]').first();
    const contactId = (await row.getAttribute('data-contact-id')) ?? '';
    await row.locator('a').click();
    await page.locator('#jobTitle').fill('Edited while sync is off');
    await page.getByRole('button', { name: 'Save and share with Connec!' }).click();
    await page.waitForLoadState();
    const flash = (await page.locator('.flash').count()) > 0 ? await page.locator('.flash').textContent() : null;

    const map = await stack.crm.mno.runtime.storage.idMaps.find({ tenant: TENANT, groupId: target.groupId, entity: 'contacts' }, { localId: contactId });
    const remote = await stack.sandbox.admin.getRecord(target.groupId, 'people', String(map?.connecId));
    // Connec! did not get the change ...
    expect(remote.job_title).not.toBe('Edited while sync is off');
    // ... and the CRM says when it will be.
    expect(flash).toBe('Contact saved. It will be shared with Connec! once sync is switched back on.');
    expect((await stack.crm.db.prisma.contact.findUniqueOrThrow({ where: { id: contactId } })).jobTitle).toBe('Edited while sync is off');
  });

  it('reaches Connec! once the sync is switched back on', { timeout: 90_000 }, async () => {
    const contact = await stack.crm.db.prisma.contact.findFirstOrThrow({ where: { jobTitle: 'Edited while sync is off' } });
    const on = await stack.sandbox.admin.syncControl({ groupId: target.groupId, action: 'toggle' });
    expect(on.body).toMatchObject({ sync_enabled: true });
    const map = await stack.crm.mno.runtime.storage.idMaps.find({ tenant: TENANT, groupId: target.groupId, entity: 'contacts' }, { localId: contact.id });
    const deadline = Date.now() + 60_000;
    let remote = await stack.sandbox.admin.getRecord(target.groupId, 'people', String(map?.connecId));
    while (remote.job_title !== 'Edited while sync is off' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      remote = await stack.sandbox.admin.getRecord(target.groupId, 'people', String(map?.connecId));
    }
    expect(remote.job_title).toBe('Edited while sync is off');
    expect((await stack.crm.db.prisma.contact.findUniqueOrThrow({ where: { id: contact.id } })).jobTitle).toBe('Edited while sync is off');
  });
});
