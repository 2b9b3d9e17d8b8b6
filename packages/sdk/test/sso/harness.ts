import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type AppRecordRef,
  type CompanyHandle,
  createMaestrano,
  type LoginArgs,
  type Logger,
  type Maestrano,
  type MaestranoConfigInput,
  type MarketplaceInput,
  memoryAdapter,
  type ProvisioningContext,
  type SsoGroup,
  type SsoUser,
  type StorageAdapter,
  toNodeListener,
  type UserHandle,
} from '@org/maestrano-sdk';
import { createTestIdp, type LoginOptions, type TestIdp, type TestUser } from '@org/maestrano-sdk/testing';

/** An in-memory "application" whose records the provisioning hooks write. */
export class FakeApp {
  companies = new Map<string, { group: SsoGroup; key: string }>();
  users = new Map<string, { email: string; firstName: string; key: string; companyId: string | null }>();
  memberships = new Map<string, string>();
  calls: { hook: string; key: string }[] = [];
  /** Number of upcoming calls of each hook that throw. */
  failures: Partial<Record<'createCompany' | 'createUser' | 'addMembership' | 'findUserByEmail', number>> = {};
  /** Delay (ms) inside createCompany, to widen race windows. */
  createCompanyDelayMs = 0;
  /** Per-call delays of createCompany, consumed first (then `createCompanyDelayMs`). */
  createCompanyDelays: number[] = [];
  seq = 0;

  #maybeFail(hook: keyof FakeApp['failures']): void {
    const left = this.failures[hook] ?? 0;
    if (left > 0) {
      this.failures[hook] = left - 1;
      throw new Error(`${hook} failed on purpose`);
    }
  }

  hooks = {
    createCompany: async (group: SsoGroup, ctx: ProvisioningContext): Promise<AppRecordRef> => {
      this.calls.push({ hook: 'createCompany', key: ctx.idempotencyKey });
      const delay = this.createCompanyDelays.shift() ?? this.createCompanyDelayMs;
      if (delay) await new Promise((r) => setTimeout(r, delay));
      this.#maybeFail('createCompany');
      for (const [id, c] of this.companies) if (c.key === ctx.idempotencyKey) return { id };
      const id = `co-${++this.seq}`;
      this.companies.set(id, { group, key: ctx.idempotencyKey });
      return { id };
    },
    createUser: async (user: SsoUser, company: CompanyHandle, ctx: ProvisioningContext): Promise<AppRecordRef> => {
      this.calls.push({ hook: 'createUser', key: ctx.idempotencyKey });
      this.#maybeFail('createUser');
      for (const [id, u] of this.users) if (u.key === ctx.idempotencyKey) return { id };
      const id = `u-${++this.seq}`;
      this.users.set(id, { email: user.appEmail, firstName: user.firstName, key: ctx.idempotencyKey, companyId: company.id });
      return { id };
    },
    addMembership: async (user: UserHandle, company: CompanyHandle, role: string, ctx: ProvisioningContext): Promise<void> => {
      this.calls.push({ hook: 'addMembership', key: ctx.idempotencyKey });
      this.#maybeFail('addMembership');
      this.memberships.set(`${user.id}|${company.id}`, role);
    },
  };

  /** `findUserByEmail` over the app's users (also pre-existing, non-Maestrano ones). */
  findUserByEmail = async (email: string, ctx: ProvisioningContext): Promise<AppRecordRef | null> => {
    this.calls.push({ hook: 'findUserByEmail', key: ctx.idempotencyKey });
    this.#maybeFail('findUserByEmail');
    for (const [id, u] of this.users) if (u.email === email) return { id };
    return null;
  };

  count(hook: string): number {
    return this.calls.filter((c) => c.hook === hook).length;
  }
}

export interface LoginAnswer {
  status: number;
  body: Record<string, unknown>;
  setCookie: string[];
}

export interface Harness {
  baseUrl: string;
  mno: Maestrano;
  idp: TestIdp;
  app: FakeApp;
  storage: StorageAdapter;
  tenant: string;
  acsUrl: string;
  logins: LoginArgs[];
  /** Full SP-initiated login in a fresh "browser": init -> IdP -> consume. */
  login(user: TestUser, options?: LoginOptions & { tenant?: string; idp?: TestIdp }): Promise<LoginAnswer>;
  /** Posts a SAMLResponse to a tenant's ACS with optional cookies. */
  post(samlResponse: string, options?: { tenant?: string; cookie?: string }): Promise<LoginAnswer>;
  /** Runs init only; returns the IdP redirect and the browser cookie. */
  init(tenant?: string, query?: string): Promise<{ location: string; cookie: string; status: number }>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  storage?: StorageAdapter;
  /** Extra marketplaces besides the default one (built from the base URL). */
  extraTenants?: (baseUrl: string) => MarketplaceInput[];
  tenantSso?: Partial<NonNullable<MarketplaceInput['sso']>>;
  sso?: MaestranoConfigInput['sso'];
  withFindUserByEmail?: boolean;
  idp?: TestIdp;
  clock?: () => Date;
  /** Default: silent (or stderr warnings with DEBUG_SSO set). */
  logger?: Logger;
  /** Extra provisioning hooks, merged over the FakeApp's. */
  provisioning?: Record<string, unknown>;
  /** Extra top-level config (e.g. billing). */
  extraConfig?: Partial<MaestranoConfigInput>;
  onSeatsChanged?: (company: CompanyHandle, change: { activeSeats: number; added: string[]; removed: string[] }, ctx: ProvisioningContext) => void | Promise<void>;
}

/** The default marketplace's api credentials (what Maestrano's webhooks authenticate with). */
const API_ID = 'app-test-1';
const API_KEY = 'test-api-key-1';

/** Maestrano's member removal webhook for `uid` in `groupId` (default marketplace); its status. */
export async function removeMember(harness: Harness, uid: string, groupId: string): Promise<number> {
  const res = await fetch(`${harness.baseUrl}/maestrano/account/groups/${groupId}/users/${uid}/${harness.tenant}`, {
    method: 'DELETE',
    headers: { authorization: `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}` },
  });
  await res.arrayBuffer();
  return res.status;
}

let sharedIdp: TestIdp | undefined;
/** One RSA key for the whole test file (generating keys is the slow part). */
export function testIdp(): TestIdp {
  sharedIdp ??= createTestIdp();
  return sharedIdp;
}

async function answer(response: Response): Promise<LoginAnswer> {
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: response.status, body, setCookie: response.headers.getSetCookie() };
}

function cookiePairs(setCookie: string[]): string {
  return setCookie
    .map((c) => c.split(';')[0] ?? '')
    .filter((c) => c.length > 0 && !c.endsWith('='))
    .join('; ');
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const idp = options.idp ?? testIdp();
  const app = new FakeApp();
  const storage = options.storage ?? memoryAdapter();
  const logins: LoginArgs[] = [];
  let handler: ((request: Request) => Promise<Response>) | undefined;
  const server: Server = createServer((req, res) => {
    void toNodeListener((request) => handler!(request))(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tenant = 'maestrano-test';
  const mno = createMaestrano({
    tenants: [
      idp.marketplace({ name: tenant, appHost: baseUrl, apiId: API_ID, apiKey: API_KEY, ...(options.tenantSso ? { sso: options.tenantSso } : {}) }),
      ...(options.extraTenants?.(baseUrl) ?? []),
    ],
    storage,
    provisioning: {
      ...app.hooks,
      ...(options.withFindUserByEmail ? { findUserByEmail: app.findUserByEmail } : {}),
      ...(options.onSeatsChanged ? { onSeatsChanged: options.onSeatsChanged } : {}),
      ...(options.provisioning ?? {}),
    },
    onLogin: (args) => {
      logins.push(args);
      return Response.json({
        userId: args.user.id,
        companyId: args.company.id,
        uid: args.user.uid,
        role: args.membership.role,
        outcome: args.outcome,
        session: args.session,
      });
    },
    logger: options.logger ?? (process.env['DEBUG_SSO'] ? { debug() {}, info() {}, warn: (m, f) => console.warn(m, f), error: (m, f) => console.error(m, f) } : { debug() {}, info() {}, warn() {}, error() {} }),
    ...(options.sso ? { sso: options.sso } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.extraConfig ?? {}),
  } as MaestranoConfigInput);
  handler = mno.handler;

  const init = async (t = tenant, query = '') => {
    const res = await fetch(`${baseUrl}/maestrano/auth/saml/init/${t}${query}`, { redirect: 'manual' });
    await res.body?.cancel();
    return { location: res.headers.get('location') ?? '', cookie: cookiePairs(res.headers.getSetCookie()), status: res.status };
  };

  const post = async (samlResponse: string, o: { tenant?: string; cookie?: string } = {}) => {
    const res = await fetch(`${baseUrl}/maestrano/auth/saml/consume/${o.tenant ?? tenant}`, {
      method: 'POST',
      body: new URLSearchParams({ SAMLResponse: samlResponse }),
      headers: o.cookie ? { cookie: o.cookie } : {},
      redirect: 'manual',
    });
    return answer(res);
  };

  return {
    baseUrl,
    mno,
    idp,
    app,
    storage,
    tenant,
    acsUrl: `${baseUrl}/maestrano/auth/saml/consume/${tenant}`,
    logins,
    init,
    post,
    login: async (user, o = {}) => {
      const t = o.tenant ?? tenant;
      const started = await init(t, `?group_id=${encodeURIComponent(user.groupUid)}`);
      const { samlResponse } = (o.idp ?? idp).respondTo(started.location, user, o);
      return post(samlResponse, { tenant: t, cookie: started.cookie });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
