import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SAML } from '@node-saml/node-saml';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { decodeBasic } from './helpers.js';

const shots = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-results');

interface AppEvent {
  method: string;
  path: string;
  body: string;
  authorization: string | undefined;
  profile?: Record<string, unknown>;
}

describe('web UI in Debian chromium', () => {
  let sb: Sandbox;
  let browser: Browser;
  let app: Server;
  let appUrl = '';
  const events: AppEvent[] = [];
  let saml: SAML | null = null;

  beforeAll(async () => {
    await mkdir(shots, { recursive: true });
    // The "app": SP-initiated SSO with node-saml (init + consume) and a notification endpoint.
    app = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const url = new URL(req.url ?? '/', appUrl);
          const event: AppEvent = { method: req.method ?? '', path: url.pathname, body, authorization: req.headers.authorization };
          events.push(event);
          if (!saml) throw new Error('SAML not configured');
          if (url.pathname === '/maestrano/auth/saml/init/sandbox') {
            const redirect = new URL(await saml.getAuthorizeUrlAsync('', undefined, {}));
            const groupId = url.searchParams.get('group_id');
            if (groupId) redirect.searchParams.set('group_id', groupId);
            res.writeHead(302, { location: redirect.toString() });
            res.end();
            return;
          }
          if (url.pathname === '/maestrano/auth/saml/consume/sandbox' && req.method === 'POST') {
            const form = new URLSearchParams(body);
            const { profile } = await saml.validatePostResponseAsync({ SAMLResponse: form.get('SAMLResponse') ?? '' });
            event.profile = (profile?.attributes ?? {}) as Record<string, unknown>;
            res.writeHead(200, { 'content-type': 'text/html' });
            res.end(`<html><body><h1 id="welcome">Welcome ${String(event.profile.name)} (${String(event.profile.uid)}) in ${String(event.profile.group_uid)}</h1></body></html>`);
            return;
          }
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"success":true}');
        })().catch((e: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(e));
        });
      });
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    sb = await startSandbox({ port: 0, appUrl, seed: 200, notifyDelayMs: 10 });
    const m = sb.credentials.marketplaces[0];
    if (!m) throw new Error('marketplace');
    saml = new SAML({
      callbackUrl: `${appUrl}/maestrano/auth/saml/consume/sandbox`,
      entryPoint: `${sb.url}/api/v1/auth/saml`,
      issuer: m.apiId,
      idpCert: m.certificate,
      audience: `${appUrl}/`,
      wantAuthnResponseSigned: false,
      wantAssertionsSigned: true,
    });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await sb?.stop();
    await new Promise<void>((resolve) => {
      app.close(() => resolve());
      app.closeAllConnections();
    });
  });

  it('launch app from a group, pick a user on the IdP page, and the signed auto-post reaches the app', async () => {
    const page = await browser.newPage();
    await page.goto(`${sb.url}/ui/groups`);
    await page.screenshot({ path: join(shots, 'sandbox-groups.png'), fullPage: true });
    await page.click('a[data-launch="cld-sbx2"]');
    await page.waitForSelector('button[data-user="usr-sbx1"]');
    await page.screenshot({ path: join(shots, 'sandbox-idp-login.png'), fullPage: true });
    await page.click('button[data-user="usr-sbx1"]');
    await page.waitForSelector('#welcome');
    const welcome = await page.textContent('#welcome');
    await page.screenshot({ path: join(shots, 'sandbox-app-welcome.png'), fullPage: true });
    expect(welcome).toContain('(usr-sbx1) in cld-sbx2');
    const consume = events.find((e) => e.path === '/maestrano/auth/saml/consume/sandbox');
    expect(consume?.method).toBe('POST');
    expect(consume?.profile).toMatchObject({ uid: 'usr-sbx1', group_uid: 'cld-sbx2', group_role: 'Super Admin', group_org_uid: 'org-sbx2' });
    const init = events.find((e) => e.path === '/maestrano/auth/saml/init/sandbox');
    expect(init).toBeDefined();
    await page.close();
  });

  it('editing a Connec! record in the UI sends a notification to the app', async () => {
    const [person] = await sb.admin.listRecords('cld-sbx1', 'people', { limit: 1 });
    if (!person) throw new Error('no seeded person');
    const page = await browser.newPage();
    await page.goto(`${sb.url}/ui/groups/cld-sbx1/connec/people/${String(person.id)}`);
    const current = JSON.parse((await page.inputValue('#record-json')) || '{}') as Record<string, unknown>;
    expect(current.first_name).toBe(person.first_name);
    await page.fill('#record-json', JSON.stringify({ ...current, job_title: 'Edited in chromium' }, null, 2));
    await page.click('#save-record');
    await page.waitForLoadState('load');
    await page.screenshot({ path: join(shots, 'sandbox-record-edit.png'), fullPage: true });
    await sb.admin.waitForDeliveries();
    const note = events.find((e) => e.path === '/maestrano/connec/notifications/sandbox' && e.body.includes('Edited in chromium'));
    expect(note?.method).toBe('POST');
    const m = sb.credentials.marketplaces[0];
    expect(decodeBasic(note?.authorization)).toEqual({ user: m?.apiId, password: m?.apiKey });
    const body = JSON.parse(note?.body ?? '{}') as { people: Array<Record<string, unknown>> };
    expect(body.people[0]).toMatchObject({ group_id: 'cld-sbx1', job_title: 'Edited in chromium', first_name: person.first_name });
    expect((await sb.admin.getRecord('cld-sbx1', 'people', String(person.id))).job_title).toBe('Edited in chromium');
    await page.goto(`${sb.url}/ui/deliveries`);
    expect(await page.textContent('body')).toContain('connec.notification');
    await page.screenshot({ path: join(shots, 'sandbox-deliveries.png'), fullPage: true });
    await page.close();
  });
});
