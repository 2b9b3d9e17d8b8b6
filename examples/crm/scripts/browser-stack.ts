/**
 * A fresh sandbox and a fresh Acme CRM for driving both in a real browser (the browser test
 * and `scripts/screenshot.ts`). Both are served on `localhost`, so they are the same site and
 * the browser keeps the CRM's SSO request cookie on the IdP's cross-origin auto-post.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import type { Logger } from '@org/maestrano-sdk';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type RunningCrm, startCrm } from '../src/server.js';

export const TENANT = 'sandbox';

export interface BrowserStack {
  sandbox: Sandbox;
  crm: RunningCrm;
  stop(): Promise<void>;
}

const quiet: Logger = {
  debug() {},
  info() {},
  warn() {},
  error(message, fields) {
    console.error(JSON.stringify({ level: 'error', message, ...fields }));
  },
};

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts a seeded sandbox and the CRM (fresh temp data folder, in-process worker). */
export async function startBrowserStack(options: { seed?: number } = {}): Promise<BrowserStack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'acme-crm-browser-'));
  const [sandboxPort, crmPort] = [await freePort(), await freePort()];
  const sandbox = await startSandbox({
    port: sandboxPort,
    host: '127.0.0.1',
    publicUrl: `http://localhost:${sandboxPort}`,
    appUrl: `http://localhost:${crmPort}`,
    seed: options.seed ?? 200,
  });
  try {
    const env = sandbox.credentials.environment;
    const doc = await fetch(sandbox.marketplacesUrl, {
      headers: { authorization: `Basic ${Buffer.from(`${env.apiKey}:${env.apiSecret}`).toString('base64')}` },
    });
    if (!doc.ok) throw new Error(`the sandbox's developer platform answered ${doc.status}`);
    const configFile = join(dataDir, 'maestrano.json');
    writeFileSync(configFile, await doc.text());
    const crm = await startCrm({ port: crmPort, configFile, dataDir, logger: quiet });
    return {
      sandbox,
      crm,
      async stop() {
        await crm.stop().catch(() => undefined);
        await sandbox.stop().catch(() => undefined);
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await sandbox.stop().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/** Debian's Chromium, headless; never downloads a browser. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/** A running group of the sandbox with seeded Connec! people, and one of its members. */
export async function pickGroupAndUser(stack: BrowserStack): Promise<{ groupId: string; groupName: string; userId: string; people: number }> {
  const { admin } = stack.sandbox;
  for (const group of await admin.listGroups()) {
    if (group.marketplace !== TENANT || group.status !== 'running') continue;
    const people = (await admin.listRecords(group.id, 'people', { limit: 10_000 })).length;
    const members = (await admin.getGroup(group.id)).members;
    // A member of this group only, so the IdP picks the group without asking.
    for (const m of members) {
      const user = await admin.getUser(m.userId);
      if (people > 0 && user.memberships.length === 1) return { groupId: group.id, groupName: group.name, userId: user.id, people };
    }
  }
  throw new Error('the seed has no running group with people and a single-group member');
}

/**
 * The marketplace flow in the browser: the sandbox's groups page, "Launch app" on the group,
 * the IdP's user picker, the auto-posted SAML response, and the CRM's contacts page.
 */
export async function launchCrmFromSandbox(page: Page, stack: BrowserStack, args: { groupId: string; userId: string }): Promise<void> {
  await page.goto(`${stack.sandbox.url}/ui/groups`);
  await page.locator(`a[data-launch="${args.groupId}"]`).click();
  // The CRM redirected to the IdP, which asks who signs in.
  await page.locator(`button[data-user="${args.userId}"]`).click();
  await page.waitForURL(`${stack.crm.url}/contacts`);
}

/** Waits until the CRM holds every Connec! person of the group as a contact. */
export async function waitForImport(stack: BrowserStack, groupId: string, people: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const { prisma } = stack.crm.db;
  for (;;) {
    const n = await prisma.contact.count({ where: { company: { tenant: TENANT, groupId } } });
    if (n >= people) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for the import (${n}/${people} contacts)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
