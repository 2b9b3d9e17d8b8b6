/**
 * The README screenshot: Acme CRM right after SSO from the sandbox, on the contacts page with
 * the imported Connec! people. Writes docs/images/crm-contacts.png at the repository root.
 *
 *   node --conditions=@org/source --import tsx examples/crm/scripts/screenshot.ts [output.png]
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, launchCrmFromSandbox, pickGroupAndUser, startBrowserStack, waitForImport } from './browser-stack.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const output = resolve(process.argv[2] ?? join(root, 'docs', 'images', 'crm-contacts.png'));

const stack = await startBrowserStack({ seed: 200 });
const browser = await launchChromium();
try {
  const target = await pickGroupAndUser(stack);
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 }, deviceScaleFactor: 1 });
  await launchCrmFromSandbox(page, stack, target);
  await waitForImport(stack, target.groupId, target.people);
  await page.reload();
  const rows = await page.locator('table#contacts tr[data-contact-id]').count();
  if (rows === 0) throw new Error('the contacts page shows no contacts');
  mkdirSync(dirname(output), { recursive: true });
  await page.screenshot({ path: output });
  console.log(`${output}: ${target.people} contacts of ${target.groupName}, signed in as ${target.userId}`);
} finally {
  await browser.close();
  await stack.stop();
}
