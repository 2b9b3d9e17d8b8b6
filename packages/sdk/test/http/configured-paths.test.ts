// The SDK serves the paths the marketplace document tells Maestrano to call, as written
// (PROTOCOL §1.2, §1.4): the tenant as the last segment, as `?marketplace=<name>`, or not
// at all (tenant-less paths). Tenants come from a loopback developer platform, requests go
// through `mno.handler` on loopback HTTP, and each test checks the stored state too.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ConnectorDefinition,
  createMaestrano,
  defineConnector,
  defineEntity,
  type DevPlatformTenants,
  type Logger,
  type Maestrano,
  type MarketplaceInput,
  memoryAdapter,
  type StorageAdapter,
  tenantsFromDevPlatform,
  toNodeListener,
} from '@org/maestrano-sdk';
import { createTestIdp, type TestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AccountApiServer, startAccountApiServer } from '../billing/account-api-server.js';
import { basicAuth, provisionGroup } from '../billing/helpers.js';

const UAT = 'maestrano-uat';
const ACME = 'acme';

let idp: TestIdp;
let apis: Record<string, AccountApiServer>;
let document: { marketplaces: MarketplaceInput[] } = { marketplaces: [] };
let handler: (request: Request) => Promise<Response> = async () => new Response(null, { status: 503 });
let platform: Server;
let platformUrl: string;
let app: Server;
let appUrl: string;

const listen = async (server: Server): Promise<string> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

beforeAll(async () => {
  idp = createTestIdp();
  apis = {
    [UAT]: await startAccountApiServer({ apiId: 'app-uat', apiKey: 'key-uat-0123456789' }),
    [ACME]: await startAccountApiServer({ apiId: 'app-acme', apiKey: 'key-acme-0123456789' }),
  };
  platform = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(document));
  });
  platformUrl = await listen(platform);
  app = createServer((req, res) => void toNodeListener((request) => handler(request))(req, res));
  appUrl = await listen(app);
});
afterAll(async () => {
  await Promise.all([close(platform), close(app), ...Object.values(apis).map((a) => a.close())]);
});

let storage: StorageAdapter;
let registry: DevPlatformTenants | undefined;
beforeEach(() => {
  storage = memoryAdapter();
  for (const api of Object.values(apis)) {
    api.groups.clear();
    api.requests.length = 0;
    api.addGroup('cld-1');
  }
});
afterEach(() => {
  registry?.close();
  registry = undefined;
});

type Paths = { group?: string; groupUser?: string; init?: string; consume?: string; notification?: string };

/** A dev-platform marketplace element (PROTOCOL §1.4) with the given paths (absent: SDK defaults). */
function marketplace(name: string, paths: Paths, credentials?: { id: string; key: string }): MarketplaceInput {
  const api = apis[name]!;
  const base = idp.marketplace({
    name,
    appHost: appUrl,
    apiId: credentials?.id ?? api.apiId,
    apiKey: credentials?.key ?? api.apiKey,
    idpHost: api.url,
  });
  return {
    ...base,
    sso: {
      ...base.sso,
      idm: '',
      ...(paths.init ? { init_path: paths.init } : {}),
      ...(paths.consume ? { consume_path: paths.consume } : {}),
    },
    webhooks: {
      account: {
        ...(paths.group ? { group_path: paths.group } : {}),
        ...(paths.groupUser ? { group_user_path: paths.groupUser } : {}),
      },
      connec: { external_ids: true, initialization_path: null, ...(paths.notification ? { notification_path: paths.notification } : {}) },
    },
  };
}

interface App {
  mno: Maestrano;
  cancelled: { tenant: string; id: string }[];
  warnings: { message: string; fields: Record<string, unknown> | undefined }[];
}

/** Serves the document from the loopback platform and builds the SDK from it. */
async function start(marketplaces: MarketplaceInput[], extra: { connector?: ConnectorDefinition } = {}): Promise<App> {
  document = { marketplaces };
  registry = await tenantsFromDevPlatform({ host: platformUrl, key: 'env-key', secret: 'env-secret', refreshMs: 0 });
  const cancelled: App['cancelled'] = [];
  const warnings: App['warnings'] = [];
  const logger: Logger = { debug() {}, info() {}, warn: (message, fields) => warnings.push({ message, fields }), error() {} };
  let seq = 0;
  const mno = createMaestrano({
    tenants: registry,
    storage,
    provisioning: {
      createCompany: () => ({ id: `company-${++seq}` }),
      createUser: () => ({ id: `user-${++seq}` }),
      cancelCompany: (company) => {
        cancelled.push({ tenant: company.tenant, id: company.id });
      },
    },
    onLogin: ({ tenant, company, group }) => Response.json({ tenant: tenant.name, company: company.id, group: group.uid }),
    logger,
    ...(extra.connector ? { connector: extra.connector } : {}),
  });
  handler = mno.handler;
  return { mno, cancelled, warnings };
}

const del = (path: string, auth: string | null) =>
  fetch(`${appUrl}${path}`, { method: 'DELETE', headers: auth ? { authorization: auth } : {} });
const auth = (name: string) => basicAuth(apis[name]!.apiId, apis[name]!.apiKey);
const groupStatus = async (tenant: string, id: string) => (await storage.groups.get(tenant, id))?.status;

describe('rule 1: the last segment names the tenant (default paths, unchanged)', () => {
  it('serves the default suffix paths next to tenants configured otherwise', async () => {
    const { cancelled } = await start([marketplace(UAT, { group: '/maestrano/account/groups/:id' }), marketplace(ACME, {})]);
    await provisionGroup(storage, ACME, 'cld-1', { companyId: 'acme-co' });
    await provisionGroup(storage, UAT, 'cld-1', { companyId: 'uat-co' });
    const res = await del(`/maestrano/account/groups/cld-1/${ACME}`, auth(ACME));
    expect(res.status).toBe(200);
    expect(await groupStatus(ACME, 'cld-1')).toBe('cancelled');
    expect(await groupStatus(UAT, 'cld-1')).toBe('active');
    expect(cancelled).toEqual([{ tenant: ACME, id: 'acme-co' }]);
  });
});

describe('rule 2: the configured path carries ?marketplace=<name>', () => {
  it('cancels the group of the marketplace the query names, on the path exactly as configured', async () => {
    const { mno, cancelled } = await start([
      marketplace(UAT, { group: `/maestrano/account/groups/:id?marketplace=${UAT}` }),
      marketplace(ACME, { group: `/maestrano/account/groups/:id?marketplace=${ACME}` }),
    ]);
    expect(mno.tenants.get(UAT)?.webhooks.account.groupPath).toBe(`/maestrano/account/groups/:id?marketplace=${UAT}`);
    await provisionGroup(storage, UAT, 'cld-1', { companyId: 'uat-co' });
    await provisionGroup(storage, ACME, 'cld-1', { companyId: 'acme-co' });

    const res = await del(`/maestrano/account/groups/cld-1?marketplace=${UAT}`, auth(UAT));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    expect(await groupStatus(UAT, 'cld-1')).toBe('cancelled');
    expect(await groupStatus(ACME, 'cld-1')).toBe('active');
    expect(cancelled).toEqual([{ tenant: UAT, id: 'uat-co' }]);

    // The other marketplace's credentials on this marketplace's URL: refused, nothing changes.
    expect((await del(`/maestrano/account/groups/cld-1?marketplace=${ACME}`, auth(UAT))).status).toBe(401);
    expect(await groupStatus(ACME, 'cld-1')).toBe('active');
    const unknown = await del('/maestrano/account/groups/cld-1?marketplace=nope', auth(UAT));
    expect(unknown.status).toBe(404);
    expect(cancelled).toHaveLength(1);
  });
});

describe('rule 3: a tenant-less path one marketplace configures', () => {
  it('belongs to that marketplace (and its suffixed form keeps working)', async () => {
    const { mno, cancelled } = await start([
      marketplace(UAT, { group: '/maestrano/account/groups/:id', groupUser: '/maestrano/account/groups/:group_id/users/:id' }),
      marketplace(ACME, {}),
    ]);
    expect(mno.tenants.get(UAT)?.webhooks.account.groupPath).toBe('/maestrano/account/groups/:id');
    await provisionGroup(storage, UAT, 'cld-1', { companyId: 'uat-co' });
    await provisionGroup(storage, UAT, 'cld-2', { companyId: 'uat-co-2' });
    await provisionGroup(storage, ACME, 'cld-1', { companyId: 'acme-co' });

    expect((await del('/maestrano/account/groups/cld-1', basicAuth(apis[UAT]!.apiId, 'wrong'))).status).toBe(401);
    expect(await groupStatus(UAT, 'cld-1')).toBe('active');

    const res = await del('/maestrano/account/groups/cld-1', auth(UAT));
    expect(res.status).toBe(200);
    expect(await groupStatus(UAT, 'cld-1')).toBe('cancelled');
    expect(await groupStatus(ACME, 'cld-1')).toBe('active');
    // What the SDK served for this configuration before: still served.
    expect((await del(`/maestrano/account/groups/cld-2/${UAT}`, auth(UAT))).status).toBe(200);
    expect(await groupStatus(UAT, 'cld-2')).toBe('cancelled');
    expect(cancelled).toEqual([
      { tenant: UAT, id: 'uat-co' },
      { tenant: UAT, id: 'uat-co-2' },
    ]);
  });
});

describe('rule 4: a tenant-less path several marketplaces configure', () => {
  const shared = { group: '/maestrano/account/groups/:id', notification: '/maestrano/connec/notifications' };

  it('sends a webhook to the marketplace whose credentials it carries', async () => {
    const { cancelled } = await start([marketplace(UAT, shared), marketplace(ACME, shared)]);
    await provisionGroup(storage, UAT, 'cld-1', { companyId: 'uat-co' });
    await provisionGroup(storage, ACME, 'cld-1', { companyId: 'acme-co' });

    const res = await del('/maestrano/account/groups/cld-1', auth(ACME));
    expect(res.status).toBe(200);
    expect(await groupStatus(ACME, 'cld-1')).toBe('cancelled');
    expect(await groupStatus(UAT, 'cld-1')).toBe('active');
    expect(cancelled).toEqual([{ tenant: ACME, id: 'acme-co' }]);

    const none = await del('/maestrano/account/groups/cld-1', basicAuth('app-uat', 'key-acme-0123456789'));
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: 'Invalid credentials' });
    expect((await del('/maestrano/account/groups/cld-1', null)).status).toBe(401);
    expect(await groupStatus(UAT, 'cld-1')).toBe('active');

    expect((await del('/maestrano/account/groups/cld-1', auth(UAT))).status).toBe(200);
    expect(await groupStatus(UAT, 'cld-1')).toBe('cancelled');
    expect(cancelled).toEqual([
      { tenant: ACME, id: 'acme-co' },
      { tenant: UAT, id: 'uat-co' },
    ]);
  });

  it('stores a Connec! notification POSTed on it under the marketplace whose credentials it carries (the body reaches the handler)', async () => {
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'inbound',
      toLocal: (p: Record<string, unknown>) => ({ name: String(p.first_name ?? '') }),
      local: { create: async () => ({ id: 'local-1' }), update: async () => {} },
    });
    await start([marketplace(UAT, shared), marketplace(ACME, shared)], { connector: defineConnector({ entities: [contacts] }) });
    const body = JSON.stringify({ people: [{ id: [{ id: 'p1', provider: 'connec', realm: 'org-1' }], group_id: 'cld-1', first_name: 'Jane' }] });
    const post = (authorization: string | null) =>
      fetch(`${appUrl}/maestrano/connec/notifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body,
      });
    const res = await post(auth(ACME));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: 1, stored: 1, duplicates: 0, ignored: 0 });
    const jobs = await storage.jobs.claim({ worker: 'w', limit: 10, leaseMs: 10_000 });
    expect(jobs.map((j) => [j.tenant, j.groupId])).toEqual([[ACME, 'cld-1']]);
    expect((await post(basicAuth('app-uat', 'key-acme-0123456789'))).status).toBe(401);
    expect((await post(null)).status).toBe(401);
    expect((await storage.jobs.counts()).pending).toBe(0);
  });

  it('answers 404 ambiguous_tenant when the marketplaces share their credentials too, and warns at start', async () => {
    const same = { id: apis[UAT]!.apiId, key: apis[UAT]!.apiKey };
    const { cancelled, warnings } = await start([marketplace(UAT, shared, same), marketplace(ACME, shared, same)]);
    expect(warnings.map((w) => w.message)).toContainEqual(expect.stringContaining('share API credentials'));
    await provisionGroup(storage, UAT, 'cld-1', { companyId: 'uat-co' });
    const res = await del('/maestrano/account/groups/cld-1', auth(UAT));
    expect(res.status).toBe(404);
    expect((await res.json()).error).toBe('ambiguous_tenant');
    expect(await groupStatus(UAT, 'cld-1')).toBe('active');
    expect(cancelled).toEqual([]);
  });

  it('answers SSO on it 404 ambiguous_tenant, with a warning naming the path when the SDK starts', async () => {
    const sso = { init: '/maestrano/auth/saml/init', consume: '/maestrano/auth/saml/consume' };
    const { warnings } = await start([marketplace(UAT, sso), marketplace(ACME, sso)]);
    const ambiguous = warnings.filter((w) => w.message.includes('same SSO path'));
    expect(ambiguous.map((w) => w.fields)).toEqual([
      { path: '/maestrano/auth/saml/init', routes: ['ssoInit'], tenants: [UAT, ACME] },
      { path: '/maestrano/auth/saml/consume', routes: ['ssoConsume'], tenants: [UAT, ACME] },
    ]);
    const init = await fetch(`${appUrl}/maestrano/auth/saml/init?group_id=cld-1`, { redirect: 'manual' });
    expect(init.status).toBe(404);
    expect(await init.json()).toMatchObject({ error: 'ambiguous_tenant' });
    const consume = await fetch(`${appUrl}/maestrano/auth/saml/consume`, { method: 'POST', body: new URLSearchParams({ SAMLResponse: 'x' }) });
    expect(consume.status).toBe(404);
    expect(await storage.groups.list(UAT)).toEqual([]);
  });
});

describe('the ambiguous-path warning across tenant refreshes', () => {
  it('is said once: a refresh bringing the same configuration (new tenant objects) does not repeat it', async () => {
    const sso = { init: '/maestrano/auth/saml/init', consume: '/maestrano/auth/saml/consume' };
    const { warnings } = await start([marketplace(UAT, sso), marketplace(ACME, sso)]);
    const ambiguous = () => warnings.filter((w) => w.message.includes('same SSO path')).length;
    expect(ambiguous()).toBe(2);
    for (let i = 0; i < 3; i++) {
      await registry?.refresh();
      // The router notices the new tenant list at its next request.
      expect((await fetch(`${appUrl}/maestrano/auth/saml/init?group_id=cld-1`, { redirect: 'manual' })).status).toBe(404);
    }
    expect(ambiguous()).toBe(2);
  });
});

describe('SSO on configured paths (ACS URL, Destination and Recipient as configured)', () => {
  const user = (groupUid: string): TestUser => ({ uid: `usr-${groupUid}`, email: `${groupUid}@example.com`, groupUid });
  const cookieOf = (res: Response) =>
    res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');

  /** init URL the SDK prints -> IdP -> POST to the ACS URL the AuthnRequest carries. */
  async function login(mno: Maestrano, tenant: string, groupUid: string, options: { destination?: string } = {}) {
    const init = await fetch(mno.sso.initUrl(tenant, { groupId: groupUid }), { redirect: 'manual' });
    expect(init.status).toBe(302);
    const { samlResponse, acsUrl } = idp.respondTo(init.headers.get('location')!, user(groupUid), options);
    const res = await fetch(acsUrl, {
      method: 'POST',
      body: new URLSearchParams({ SAMLResponse: samlResponse }),
      headers: { cookie: cookieOf(init) },
      redirect: 'manual',
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, acsUrl };
  }

  it('logs in through ?marketplace= paths (rule 2) and a tenant-less pair (rule 3), printing them as configured', async () => {
    const { mno } = await start([
      marketplace(UAT, { init: `/maestrano/auth/saml/init?marketplace=${UAT}`, consume: `/maestrano/auth/saml/consume?marketplace=${UAT}` }),
      marketplace(ACME, { init: '/sso/init', consume: '/sso/consume' }),
    ]);
    expect(mno.sso.initUrl(UAT, { groupId: 'cld-1' })).toBe(`${appUrl}/maestrano/auth/saml/init?marketplace=${UAT}&group_id=cld-1`);

    const uat = await login(mno, UAT, 'cld-u');
    expect(uat.acsUrl).toBe(`${appUrl}/maestrano/auth/saml/consume?marketplace=${UAT}`);
    expect(uat.status).toBe(200);
    expect(uat.body).toMatchObject({ tenant: UAT, group: 'cld-u' });
    expect(await groupStatus(UAT, 'cld-u')).toBe('active');

    const acme = await login(mno, ACME, 'cld-a');
    expect(acme.acsUrl).toBe(`${appUrl}/sso/consume`);
    expect(acme.status).toBe(200);
    expect(acme.body).toMatchObject({ tenant: ACME, group: 'cld-a' });
    expect(await groupStatus(ACME, 'cld-a')).toBe('active');
    expect(await storage.groups.get(UAT, 'cld-a')).toBeNull();

    // SP metadata and the legacy metadata document print the paths as configured.
    const xml = await (await fetch(`${appUrl}/maestrano/auth/saml/metadata/${UAT}`)).text();
    expect(xml).toContain(`Location="${appUrl}/maestrano/auth/saml/consume?marketplace=${UAT}"`);
    const metadata = await fetch(`${appUrl}/maestrano/metadata/${UAT}`, { headers: { authorization: auth(UAT) } });
    expect(((await metadata.json()) as { sso: unknown }).sso).toMatchObject({
      init_path: `/maestrano/auth/saml/init?marketplace=${UAT}`,
      consume_path: `/maestrano/auth/saml/consume?marketplace=${UAT}`,
    });
  });

  it('refuses a response whose Destination is the ACS URL without the configured query', async () => {
    const { mno } = await start([
      marketplace(UAT, { init: `/maestrano/auth/saml/init?marketplace=${UAT}`, consume: `/maestrano/auth/saml/consume?marketplace=${UAT}` }),
      marketplace(ACME, {}),
    ]);
    const refused = await login(mno, UAT, 'cld-d', { destination: `${appUrl}/maestrano/auth/saml/consume` });
    expect(refused.acsUrl).toBe(`${appUrl}/maestrano/auth/saml/consume?marketplace=${UAT}`);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: 'destination' });
    expect(await storage.groups.get(UAT, 'cld-d')).toBeNull();
  });
});
