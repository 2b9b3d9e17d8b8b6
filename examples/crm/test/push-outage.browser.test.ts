// A contact saved in the CRM while Connec! is unavailable (503 on its batch endpoint): the CRM
// says the change is saved here but not shared yet (Connec! could not be reached), not that
// Connec! refused it; saving the form again once Connec! is back shares it.
// Real Chromium, launched from the sandbox's UI.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserStack, launchChromium, launchCrmFromSandbox, pickGroupAndUser, startBrowserStack, TENANT, waitForImport } from '../scripts/browser-stack.js';

describe('a contact saved while Connec! is unavailable', () => {
  let stack: BrowserStack;
  let browser: Browser;
  let page: Page;
  let target: Awaited<ReturnType<typeof pickGroupAndUser>>;

  beforeAll(async () => {
    stack = await startBrowserStack({ seed: 40 });
    target = await pickGroupAndUser(stack);
    browser = await launchChromium();
    page = await browser.newPage();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('is reported as not shared yet (not refused), and saving again shares it', { timeout: 90_000 }, async () => {
    const { admin } = stack.sandbox;
    await launchCrmFromSandbox(page, stack, target);
    await waitForImport(stack, target.groupId, target.people);
    await page.goto(`${stack.crm.url}/contacts`);
    const row = page.locator('table#contacts tr[data-contact-id]').first();
    const contactId = (await row.getAttribute('data-contact-id')) ?? '';
    await row.locator('a').click();
    await page.locator('#jobTitle').fill('Saved during the outage');

    await admin.addFault({ path: '/batch', method: 'POST', kind: 'status', status: 503 });
    let status: number;
    try {
      const [answer] = await Promise.all([
        page.waitForResponse((res) => new URL(res.url()).pathname === `/contacts/${contactId}` && res.request().method() === 'POST'),
        page.getByRole('button', { name: 'Save and share with Connec!' }).click(),
      ]);
      status = answer.status();
      await page.waitForLoadState();
    } finally {
      await admin.clearFaults();
    }
    expect(status).toBe(503);
    const message = (await page.locator('#form-error').textContent()) ?? '';
    expect(message).toContain('could not be reached');
    expect(message).not.toContain('refused');
    await expect(page.locator('#jobTitle').inputValue()).resolves.toBe('Saved during the outage');
    const map = await stack.crm.mno.runtime.storage.idMaps.find({ tenant: TENANT, groupId: target.groupId, entity: 'contacts' }, { localId: contactId });
    const connecId = map?.connecId ?? '';
    expect((await admin.getRecord(target.groupId, 'people', connecId)).job_title).not.toBe('Saved during the outage');

    // Connec! is back: the same form, saved again, shares the change.
    await page.getByRole('button', { name: 'Save and share with Connec!' }).click();
    await page.waitForURL(`${stack.crm.url}/contacts?saved=1`);
    expect((await admin.getRecord(target.groupId, 'people', connecId)).job_title).toBe('Saved during the outage');
  });
});
