// The billed export while Maestrano's billing API fails: the user gets a page that says the
// export was not billed and offers the same form again (its key bills it at most once), not a
// bare "Internal Server Error"; the billing page keeps that retry on the unbilled charge, and
// the retry bills it once and downloads the file. Real Chromium, launched from the sandbox's UI.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserStack, launchChromium, launchCrmFromSandbox, pickGroupAndUser, startBrowserStack } from '../scripts/browser-stack.js';

describe('the billed export while Maestrano billing is failing', () => {
  let stack: BrowserStack;
  let browser: Browser;
  let page: Page;
  let target: Awaited<ReturnType<typeof pickGroupAndUser>>;

  beforeAll(async () => {
    stack = await startBrowserStack({ seed: 40 });
    target = await pickGroupAndUser(stack);
    browser = await launchChromium();
    page = await browser.newPage();
    await launchCrmFromSandbox(page, stack, target);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const exportBills = async () =>
    (await stack.sandbox.admin.listBills(target.groupId)).filter((b) => String(b.description ?? '').startsWith('Acme CRM contacts export'));

  /** Opens the billing page, submits its export form while Maestrano answers `status`, returns the form's key. */
  async function failedExport(status: number): Promise<string> {
    const { admin } = stack.sandbox;
    await page.goto(`${stack.crm.url}/billing`);
    const key = await page.locator('input[name="key"]').first().inputValue();
    await admin.addFault({ path: '/api/v1/*bills*', method: 'POST', kind: 'status', status });
    try {
      const [answer] = await Promise.all([
        page.waitForResponse((res) => new URL(res.url()).pathname === '/billing/export'),
        page.getByRole('button', { name: /Export contacts as CSV/ }).click(),
      ]);
      await page.waitForLoadState();
      expect(answer.status()).toBe(503);
    } finally {
      await admin.clearFaults();
    }
    await expect(page.locator('#refused').textContent()).resolves.toContain('could not be billed');
    // The same export again (same idempotency key).
    await expect(page.locator('form[action="/billing/export"] input[name="key"]').inputValue()).resolves.toBe(key);
    return key;
  }

  it('Maestrano unavailable (503): a page that says so, and the unbilled charge keeps its retry', { timeout: 60_000 }, async () => {
    const key = await failedExport(503);
    expect(await exportBills()).toHaveLength(0);
    await page.goto(`${stack.crm.url}/billing`);
    const row = page.locator('#charges tbody tr').first();
    await expect(row.textContent()).resolves.toContain('pending');
    expect(await row.locator('a', { hasText: 'Download' }).count()).toBe(0);
    await expect(row.locator('input[name="key"]').inputValue()).resolves.toBe(key);
  });

  it('Maestrano refused it (422): the retry bills it once and downloads the file', { timeout: 60_000 }, async () => {
    const key = await failedExport(422);
    expect(await exportBills()).toHaveLength(0);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Try again' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^contacts-\d{4}-\d{2}-\d{2}\.csv$/);
    const bills = await exportBills();
    expect(bills).toHaveLength(1);
    const charge = await stack.crm.db.prisma.charge.findUniqueOrThrow({ where: { id: key } });
    expect(charge.billId).toBe(bills[0]?.id);
  });
});
