// A Connec! person without a last name is listed in the CRM as "(no last name)" (the CRM needs
// one). Editing that contact in the CRM must not write the placeholder into Connec! as the
// person's last name (every other app of the company would show it). Real Chromium.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserStack, launchChromium, launchCrmFromSandbox, pickGroupAndUser, startBrowserStack, TENANT, waitForImport } from '../scripts/browser-stack.js';

describe('a contact without a last name, edited in the CRM', () => {
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

  it('keeps the Connec! person without a last name', { timeout: 90_000 }, async () => {
    const { admin } = stack.sandbox;
    const person = await admin.createRecord(target.groupId, 'people', { first_name: 'Cher' });
    await launchCrmFromSandbox(page, stack, target);
    await waitForImport(stack, target.groupId, target.people + 1);
    const map = await stack.crm.mno.runtime.storage.idMaps.find({ tenant: TENANT, groupId: target.groupId, entity: 'contacts' }, { connecId: person.id });
    const contactId = map?.localId ?? '';
    await page.goto(`${stack.crm.url}/contacts`);
    await expect(page.locator(`tr[data-contact-id="${contactId}"] td`).first().textContent()).resolves.toBe('Cher (no last name)');

    await page.locator(`tr[data-contact-id="${contactId}"] a`).click();
    await page.locator('#jobTitle').fill('Singer');
    await page.getByRole('button', { name: 'Save and share with Connec!' }).click();
    await page.waitForURL(`${stack.crm.url}/contacts?saved=1`);

    const remote = await admin.getRecord(target.groupId, 'people', person.id);
    expect(remote.job_title).toBe('Singer');
    expect(remote.first_name).toBe('Cher');
    expect(remote.last_name ?? null).toBeNull();
  });
});
