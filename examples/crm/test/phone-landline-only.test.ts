// The CRM's one phone field is Connec!'s work landline (phone_work.landline), both ways. It
// used to show a mobile-only person's mobile and write it back as a landline: an edit of any
// other field copied the mobile into the landline, and clearing the phone left the mobile in
// Connec! (to come back with the next change there). A mobile is now another app's field,
// which the CRM neither shows nor touches.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@org/maestrano-sdk';
import { type Sandbox, SandboxAdmin, startSandbox } from '@org/maestrano-sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ssoLogin } from '../src/demo/checklist.js';
import { type RunningCrm, startCrm } from '../src/server.js';

const TENANT = 'sandbox';
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });

let sandbox: Sandbox;
let crm: RunningCrm;
let admin: SandboxAdmin;
let crmUrl: string;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'acme-crm-phone-'));
  const crmPort = await freePort();
  crmUrl = `http://127.0.0.1:${crmPort}`;
  sandbox = await startSandbox({ port: 0, appUrl: crmUrl, seed: 0, marketplaces: [TENANT] });
  admin = new SandboxAdmin(sandbox.url);
  const env = sandbox.credentials.environment;
  const doc = await fetch(sandbox.marketplacesUrl, { headers: { authorization: `Basic ${Buffer.from(`${env.apiKey}:${env.apiSecret}`).toString('base64')}` } });
  const configFile = join(dataDir, 'maestrano.json');
  writeFileSync(configFile, await doc.text());
  crm = await startCrm({ port: crmPort, configFile, dataDir, logger: quiet, workerConcurrency: 2 });
}, 60_000);

afterAll(async () => {
  await crm?.stop().catch(() => undefined);
  await sandbox?.stop().catch(() => undefined);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function importedContact(lastName: string) {
  const group = await admin.createGroup({ name: `Phone ${lastName}`, marketplace: TENANT });
  const person = await admin.createRecord(group.id, 'people', { first_name: 'Mo', last_name: lastName, phone_work: { mobile: '+61 400 111 222' } });
  const user = await admin.createUser({ name: 'Pat', surname: 'Phone', email: `pat.${lastName.toLowerCase()}.${Date.now()}@example.com`, memberships: [{ groupId: group.id, role: 'Admin' }] });
  const login = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: user.id, groupId: group.id });
  expect(login.status).toBe(303);
  const company = await crm.db.prisma.company.findUniqueOrThrow({ where: { tenant_groupId: { tenant: TENANT, groupId: group.id } } });
  const deadline = Date.now() + 20_000;
  let contact = await crm.db.prisma.contact.findFirst({ where: { companyId: company.id, lastName } });
  while (!contact) {
    if (Date.now() > deadline) throw new Error('the import never brought the contact in');
    await new Promise((r) => setTimeout(r, 50));
    contact = await crm.db.prisma.contact.findFirst({ where: { companyId: company.id, lastName } });
  }
  // The CRM's phone is the landline: a mobile-only person has none.
  expect(contact.phone).toBeNull();
  const save = (fields: Record<string, string>) =>
    fetch(`${crmUrl}/contacts/${contact.id}`, {
      method: 'POST',
      headers: { cookie: login.cookie ?? '', origin: crmUrl, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields),
      redirect: 'manual',
    });
  return { group, person, contact, save };
}

describe('a contact whose Connec! phone is a mobile number', () => {
  it('editing another field leaves the Connec! phones as they were (no landline copy of the mobile)', async () => {
    const { group, person, save } = await importedContact('Keepmobile');
    const saved = await save({ firstName: 'Mo', lastName: 'Keepmobile', email: '', phone: '', jobTitle: 'Buyer' });
    expect(saved.status).toBe(303);
    const stored = (await admin.getRecord(group.id, 'people', String(person.id))) as { job_title?: unknown; phone_work?: { landline?: unknown; mobile?: unknown } };
    expect(stored.job_title).toBe('Buyer');
    expect(stored.phone_work?.mobile).toBe('+61 400 111 222');
    expect(stored.phone_work?.landline ?? null).toBeNull();
  });

  it('a phone set in the CRM is the landline, then cleared there and in Connec!; the mobile stays', async () => {
    const { group, person, contact, save } = await importedContact('Setlandline');
    expect((await save({ firstName: 'Mo', lastName: 'Setlandline', email: '', phone: '+61 2 5550 0000', jobTitle: '' })).status).toBe(303);
    const read = async () => (await admin.getRecord(group.id, 'people', String(person.id))) as { phone_work?: { landline?: unknown; mobile?: unknown } };
    expect((await read()).phone_work).toMatchObject({ landline: '+61 2 5550 0000', mobile: '+61 400 111 222' });
    expect((await save({ firstName: 'Mo', lastName: 'Setlandline', email: '', phone: '', jobTitle: '' })).status).toBe(303);
    expect((await crm.db.prisma.contact.findUniqueOrThrow({ where: { id: contact.id } })).phone).toBeNull();
    expect((await read()).phone_work?.landline ?? null).toBeNull();
    expect((await read()).phone_work?.mobile).toBe('+61 400 111 222');
  });
});
