/**
 * The Maestrano integration checklist, driven end to end against fresh data: a new sandbox
 * (two marketplaces), a new CRM database, real HTTP, real SAML. Each item reports its outcome
 * and key figures. Used by `npm run demo` and by the CRM's test suite.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Sandbox, SandboxAdmin, startSandbox } from '@org/maestrano-sandbox';
import type { Logger, SyncEvent } from '@org/maestrano-sdk';
import { type RunningCrm, startCrm } from '../server.js';

export interface ChecklistItem {
  id: string;
  title: string;
  passed: boolean;
  /** Key figures or the reason of a failure. */
  detail: string;
}

export interface DemoOptions {
  /** PostgreSQL instead of the embedded SQLite database. */
  databaseUrl?: string | undefined;
  /** Records seeded into the sandbox (spread over its groups). Default 600. */
  seed?: number;
  /** Called as each item completes. */
  onItem?: (item: ChecklistItem) => void;
  /** Import progress (records done / total of the entity). */
  onProgress?: (progress: { entity: string; done: number; total: number | null }) => void;
  /** The CRM's logger. Default: errors only (some items provoke refusals on purpose). */
  logger?: Logger;
}

const errorsOnly: Logger = {
  debug() {},
  info() {},
  warn() {},
  error(message, fields) {
    console.error(JSON.stringify({ level: 'error', message, ...fields }));
  },
};

const TENANT = 'sandbox';
const TENANT_2 = 'acme-eu';

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

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A browserless SSO login through the sandbox IdP, exactly as the browser would do it. */
export async function ssoLogin(
  crmUrl: string,
  admin: SandboxAdmin,
  args: { tenant: string; userId: string; groupId: string; returnTo?: string },
): Promise<{ status: number; cookie: string | null; location: string | null; body: string }> {
  const returnTo = args.returnTo ? `&return_to=${encodeURIComponent(args.returnTo)}` : '';
  const init = await fetch(`${crmUrl}/maestrano/auth/saml/init/${args.tenant}?group_id=${encodeURIComponent(args.groupId)}${returnTo}`, {
    redirect: 'manual',
  });
  const location = init.headers.get('location');
  if (init.status !== 302 || !location) throw new Error(`SSO init answered ${init.status}`);
  const requestCookie = init.headers.get('set-cookie')?.split(';')[0] ?? '';
  const login = await admin.ssoLogin({ authnRequestUrl: location, userId: args.userId, groupId: args.groupId });
  const form = new URLSearchParams({ SAMLResponse: login.samlResponse });
  if (login.relayState) form.set('RelayState', login.relayState);
  const consume = await fetch(login.acsUrl, { method: 'POST', body: form, headers: { cookie: requestCookie }, redirect: 'manual' });
  const cookie = consume.headers.get('set-cookie')?.split(';')[0] ?? null;
  return { status: consume.status, cookie: cookie?.startsWith('crm_sid=') ? cookie : null, location: consume.headers.get('location'), body: await consume.text() };
}

function count(html: string, heading: 'Contacts' | 'Accounts'): number | null {
  const m = new RegExp(`${heading} <small class="muted">\\((\\d+)\\)`).exec(html);
  return m ? Number(m[1]) : null;
}

export async function runChecklist(options: DemoOptions = {}): Promise<ChecklistItem[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'acme-crm-demo-'));
  const items: ChecklistItem[] = [];
  const record = (id: string, title: string, passed: boolean, detail: string) => {
    const item = { id, title, passed, detail };
    items.push(item);
    options.onItem?.(item);
  };
  const check = async (id: string, title: string, fn: () => Promise<string>) => {
    try {
      record(id, title, true, await fn());
    } catch (error) {
      // fetch's own message ("fetch failed") says nothing: its cause tells a refused or reset connection.
      const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
      record(id, title, false, error instanceof Error ? `${error.message}${cause}` : String(error));
    }
  };

  let sandbox: Sandbox | null = null;
  let crm: RunningCrm | null = null;
  try {
    const crmPort = await freePort();
    const crmUrl = `http://127.0.0.1:${crmPort}`;
    sandbox = await startSandbox({ port: 0, appUrl: crmUrl, seed: options.seed ?? 600, marketplaces: [TENANT, TENANT_2] });
    const admin = new SandboxAdmin(sandbox.url);
    const env = sandbox.credentials.environment;
    const doc = await fetch(sandbox.marketplacesUrl, {
      headers: { authorization: `Basic ${Buffer.from(`${env.apiKey}:${env.apiSecret}`).toString('base64')}` },
    });
    const configFile = join(dataDir, 'maestrano.json');
    writeFileSync(configFile, await doc.text());
    crm = await startCrm({
      port: crmPort,
      configFile,
      databaseUrl: options.databaseUrl,
      dataDir,
      workerConcurrency: 4,
      logger: options.logger ?? errorsOnly,
    });
    const { prisma } = crm.db;
    const running = crm;
    const progress: SyncEvent[] = [];
    running.mno.sync.on((event) => {
      if (event.type === 'import.progress') {
        progress.push(event);
        options.onProgress?.({ entity: event.entity, done: event.done, total: event.total });
      }
    });

    const creds = sandbox.credentials.marketplaces.find((m) => m.name === TENANT)!;
    const basic = (id: string, key: string) => `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`;

    // A group of the first marketplace with seeded Connec! data, and its members.
    const groups = (await admin.listGroups()).filter((g) => g.marketplace === TENANT && g.status === 'running');
    let group = groups[0]!;
    let people = 0;
    for (const g of groups) {
      const n = (await admin.listRecords(g.id, 'people', { limit: 10_000 })).length;
      if (n > 0) {
        group = g;
        people = n;
        break;
      }
    }
    const organizations = (await admin.listRecords(group.id, 'organizations', { limit: 10_000 })).length;
    const owner = await admin.createUser({ name: 'Olivia', surname: 'Owner', email: `olivia.${Date.now()}@example.com`, memberships: [{ groupId: group.id, role: 'Super Admin' }] });
    const colleague = await admin.createUser({ name: 'Carl', surname: 'Colleague', email: `carl.${Date.now()}@example.com`, memberships: [{ groupId: group.id, role: 'Member' }] });

    await check('1.1.1', 'Metadata endpoint (Basic auth, no secrets)', async () => {
      const ok = await fetch(`${crmUrl}/maestrano/metadata/${TENANT}`, { headers: { authorization: basic(creds.apiId, creds.apiKey) } });
      const body = await ok.text();
      const bad = await fetch(`${crmUrl}/maestrano/metadata/${TENANT}`, { headers: { authorization: basic(creds.apiId, 'wrong') } });
      if (ok.status !== 200) throw new Error(`right credentials answered ${ok.status}`);
      if (body.includes(creds.apiKey)) throw new Error('the metadata document contains the api key');
      if (bad.status !== 401) throw new Error(`wrong credentials answered ${bad.status}`);
      return `200 with ${Object.keys(JSON.parse(body) as object).length} sections, 401 on wrong credentials, api key absent`;
    });

    let ownerCookie: string | null = null;
    await check('1.2.1', 'First SSO creates the company from group_id', async () => {
      const login = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: owner.id, groupId: group.id });
      if (login.status !== 303 || !login.cookie) throw new Error(`consume answered ${login.status}: ${login.body.slice(0, 200)}`);
      ownerCookie = login.cookie;
      const company = await prisma.company.findUnique({ where: { tenant_groupId: { tenant: TENANT, groupId: group.id } } });
      if (!company) throw new Error('no company for the group');
      return `company "${company.name}" (${company.id}) for ${group.id}`;
    });

    await check('1.2.3', 'First SSO creates the user', async () => {
      const user = await prisma.user.findUnique({ where: { email: owner.email } });
      if (!user) throw new Error('no CRM user for the first login');
      const m = await prisma.membership.findFirst({ where: { userId: user.id } });
      return `user ${user.id} with role ${m?.role ?? '?'}`;
    });

    await check('1.2.2', 'Another member joins the existing company', async () => {
      const before = await prisma.company.count();
      const login = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: colleague.id, groupId: group.id });
      if (login.status !== 303) throw new Error(`consume answered ${login.status}`);
      const user = await prisma.user.findUniqueOrThrow({ where: { email: colleague.email }, include: { memberships: true } });
      if ((await prisma.company.count()) !== before) throw new Error('a second company was created');
      return `user ${user.id} added to the company (${user.memberships.length} membership)`;
    });

    await check('1.3.1', 'A returning user is logged in by user_id', async () => {
      const users = await prisma.user.count();
      const login = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: owner.id, groupId: group.id });
      if (login.status !== 303 || !login.cookie) throw new Error(`consume answered ${login.status}`);
      if ((await prisma.user.count()) !== users) throw new Error('a user was created for a returning login');
      ownerCookie = login.cookie;
      return `same user, ${users} users in the CRM`;
    });

    await check('1.4.1', 'An unknown user_id with a known email is linked', async () => {
      const email = `legacy.${Date.now()}@example.com`;
      const legacy = await prisma.user.create({ data: { id: `us_legacy_${Date.now()}`, email, firstName: 'Lee', lastName: 'Legacy' } });
      const mnoUser = await admin.createUser({ name: 'Lee', surname: 'Legacy', email, memberships: [{ groupId: group.id }] });
      const login = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: mnoUser.id, groupId: group.id });
      if (login.status !== 303) throw new Error(`consume answered ${login.status}`);
      const linked = await running.mno.runtime.storage.users.get(TENANT, mnoUser.id);
      if (linked?.userId !== legacy.id) throw new Error(`uid linked to ${linked?.userId ?? 'nothing'}, expected ${legacy.id}`);
      return `${mnoUser.id} linked to existing user ${legacy.id}`;
    });

    await check('3.1.1', 'Initial import of the company data from Connec!', async () => {
      const company = await prisma.company.findUniqueOrThrow({ where: { tenant_groupId: { tenant: TENANT, groupId: group.id } } });
      const done = await waitFor('the initial import', async () => {
        const contacts = await prisma.contact.count({ where: { companyId: company.id } });
        const accounts = await prisma.account.count({ where: { companyId: company.id } });
        return contacts >= people && accounts >= organizations ? { contacts, accounts } : null;
      }, 60_000);
      if (done.contacts !== people || done.accounts !== organizations) {
        throw new Error(`imported ${done.contacts}/${people} people and ${done.accounts}/${organizations} organizations`);
      }
      const page = await fetch(`${crmUrl}/contacts`, { headers: { cookie: ownerCookie ?? '' } });
      const shown = count(await page.text(), 'Contacts');
      if (shown !== people) throw new Error(`the contacts page shows ${shown}`);
      return `${done.contacts} contacts and ${done.accounts} accounts imported (${progress.length} progress events)`;
    });

    await check('2.1.1', 'Billing set up on company creation, after the free trial', async () => {
      const bills = await waitFor('the recurring bill', async () => {
        const all = await admin.listRecurringBills(group.id);
        return all.length > 0 ? all : null;
      });
      if (bills.length !== 1) throw new Error(`${bills.length} recurring bills for one company`);
      const start = Date.parse(String(bills[0]!.start_date));
      const trialEnd = Date.parse(group.freeTrialEndAt);
      if (!(start >= trialEnd)) throw new Error(`starts ${bills[0]!.start_date}, before the trial end ${group.freeTrialEndAt}`);
      return `1 recurring bill of ${bills[0]!.price_cents} ${bills[0]!.currency} starting ${String(bills[0]!.start_date).slice(0, 10)} (trial ends ${group.freeTrialEndAt.slice(0, 10)})`;
    });

    await check('2.1.2', 'Ad-hoc bill for extra usage, exactly once', async () => {
      const before = (await admin.listBills(group.id)).length;
      // The billing page renders the export's idempotency key into its form.
      const page = await (await fetch(`${crmUrl}/billing`, { headers: { cookie: ownerCookie ?? '' } })).text();
      const key = /name="key" value="(ch_[0-9a-f]+)"/.exec(page)?.[1];
      if (!key) throw new Error('no export form on the billing page');
      // The form submitted twice (a double click): one bill.
      for (let submit = 0; submit < 2; submit++) {
        const res = await fetch(`${crmUrl}/billing/export`, {
          method: 'POST',
          headers: { cookie: ownerCookie ?? '', origin: crmUrl, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ key }),
          redirect: 'manual',
        });
        if (res.status !== 303) throw new Error(`export answered ${res.status}`);
      }
      const charge = await prisma.charge.findUniqueOrThrow({ where: { id: key } });
      // The same idempotency key again (a retried request) must not bill twice.
      const again = await running.mno.billing.charge({
        tenant: TENANT,
        groupId: group.id,
        priceCents: charge.priceCents,
        currency: charge.currency,
        description: charge.description,
        idempotencyKey: charge.id,
      });
      const after = await admin.listBills(group.id);
      if (after.length !== before + 1) throw new Error(`${after.length - before} bills created`);
      if (again.billId !== charge.billId) throw new Error('the replayed charge returned another bill');
      return `bill ${charge.billId} for ${charge.priceCents} cents; a double submit and a replay returned the same bill`;
    });

    await check('3.2.1', 'Local changes are pushed to Connec!', async () => {
      const contact = await prisma.contact.findFirstOrThrow({ where: { company: { groupId: group.id } }, orderBy: { id: 'asc' } });
      const res = await fetch(`${crmUrl}/contacts/${contact.id}`, {
        method: 'POST',
        headers: { cookie: ownerCookie ?? '', origin: crmUrl, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ firstName: contact.firstName ?? '', lastName: contact.lastName, email: contact.email ?? '', phone: contact.phone ?? '', jobTitle: 'Chief Demo Officer' }),
        redirect: 'manual',
      });
      if (res.status !== 303) throw new Error(`the edit answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
      const map = await running.mno.runtime.storage.idMaps.find({ tenant: TENANT, groupId: group.id, entity: 'contacts' }, { localId: contact.id });
      if (!map?.connecId) throw new Error('no Connec! id for the contact');
      const remote = await admin.getRecord(group.id, 'people', map.connecId);
      if (remote.job_title !== 'Chief Demo Officer') throw new Error(`Connec! has job_title ${String(remote.job_title)}`);
      return `contact ${contact.id} -> Connec! person ${map.connecId} now "Chief Demo Officer"`;
    });

    await check('3.3.1', 'Notification for an unknown record creates it', async () => {
      const created = await admin.createRecord(group.id, 'people', { first_name: 'Nora', last_name: 'Notified', email: { address: 'nora@example.com' } });
      const id = String(created.id);
      const contact = await waitFor('the notified contact', async () => {
        const map = await running.mno.runtime.storage.idMaps.find({ tenant: TENANT, groupId: group.id, entity: 'contacts' }, { connecId: id });
        return map?.localId ? prisma.contact.findUnique({ where: { id: map.localId } }) : null;
      });
      if (contact.lastName !== 'Notified') throw new Error(`created ${contact.lastName}`);
      return `Connec! person ${id} -> CRM contact ${contact.id}`;
    });

    await check('3.3.2', 'Notification for a known record updates it', async () => {
      const contact = await prisma.contact.findFirstOrThrow({ where: { company: { groupId: group.id }, lastName: { not: 'Notified' } }, orderBy: { id: 'desc' } });
      const map = await running.mno.runtime.storage.idMaps.find({ tenant: TENANT, groupId: group.id, entity: 'contacts' }, { localId: contact.id });
      if (!map?.connecId) throw new Error('contact without a Connec! id');
      const contactsBefore = await prisma.contact.count();
      await admin.updateRecord(group.id, 'people', map.connecId, { job_title: 'Updated from Connec!' });
      const updated = await waitFor('the update', async () => {
        const c = await prisma.contact.findUnique({ where: { id: contact.id } });
        return c?.jobTitle === 'Updated from Connec!' ? c : null;
      });
      if ((await prisma.contact.count()) !== contactsBefore) throw new Error('the update created a record');
      return `contact ${updated.id} updated in place`;
    });

    await check('4', 'Multi-tenant: a second marketplace with its own keys and certificate', async () => {
      const g2 = await admin.createGroup({ name: 'Euro Traders', marketplace: TENANT_2 });
      const u2 = await admin.createUser({ name: 'Eva', surname: 'Euro', email: `eva.${Date.now()}@example.com`, memberships: [{ groupId: g2.id, role: 'Admin' }] });
      const login = await ssoLogin(crmUrl, admin, { tenant: TENANT_2, userId: u2.id, groupId: g2.id });
      if (login.status !== 303) throw new Error(`second marketplace consume answered ${login.status}`);
      const company = await prisma.company.findUnique({ where: { tenant_groupId: { tenant: TENANT_2, groupId: g2.id } } });
      if (!company) throw new Error('no company for the second marketplace');
      // A response signed for the second marketplace, posted to the first one's ACS, is refused.
      const init = await fetch(`${crmUrl}/maestrano/auth/saml/init/${TENANT_2}?group_id=${g2.id}`, { redirect: 'manual' });
      const sso = await admin.ssoLogin({ authnRequestUrl: init.headers.get('location')!, userId: u2.id, groupId: g2.id });
      const cross = await fetch(`${crmUrl}/maestrano/auth/saml/consume/${TENANT}`, {
        method: 'POST',
        body: new URLSearchParams({ SAMLResponse: sso.samlResponse }),
        redirect: 'manual',
      });
      if (cross.status < 400 || cross.status >= 500) throw new Error(`cross-tenant response answered ${cross.status}`);
      const fps = sandbox!.credentials.marketplaces.map((m) => m.fingerprint);
      return `${TENANT_2} company ${company.id}; cross-tenant response refused (${cross.status}); ${new Set(fps).size} distinct IdP certificates`;
    });

    await check('2.2.2', 'Member removed from the group: user blocked', async () => {
      const login = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: colleague.id, groupId: group.id });
      await admin.removeMember(group.id, colleague.id);
      const user = await waitFor('the block', async () => {
        const u = await prisma.user.findUnique({ where: { email: colleague.email } });
        return u?.status === 'blocked' ? u : null;
      });
      const page = await fetch(`${crmUrl}/contacts`, { headers: { cookie: login.cookie ?? '' }, redirect: 'manual' });
      if (page.status === 200) throw new Error('the removed member still sees the contacts');
      return `user ${user.id} blocked; access answered ${page.status}`;
    });

    await check('2.2.1', 'Group cancelled: company cancelled and access refused', async () => {
      await admin.cancelGroup(group.id);
      const company = await waitFor('the cancellation', async () => {
        const c = await prisma.company.findUnique({ where: { tenant_groupId: { tenant: TENANT, groupId: group.id } } });
        return c?.status === 'cancelled' ? c : null;
      });
      const login = await ssoLogin(crmUrl, admin, { tenant: TENANT, userId: owner.id, groupId: group.id }).catch(() => null);
      const page = await fetch(`${crmUrl}/contacts`, { headers: { cookie: login?.cookie ?? ownerCookie ?? '' }, redirect: 'manual' });
      if (page.status === 200) throw new Error('the cancelled company is still accessible');
      const active = (await admin.listRecurringBills(group.id)).filter((b) => b.status !== 'cancelled').length;
      return `company ${company.id} cancelled; access answered ${page.status}; ${active} active recurring bills left`;
    });
  } catch (error) {
    record('setup', 'Start the sandbox and the CRM', false, error instanceof Error ? error.message : String(error));
  } finally {
    await crm?.stop().catch(() => undefined);
    await sandbox?.stop().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
  return items;
}
