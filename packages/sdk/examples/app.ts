/**
 * The application side shared by both mounting examples: its own users and companies (an
 * in-memory stand-in for the app's database), the provisioning hooks and the login handler.
 * Run an example with:
 *   node --conditions=@org/source --import tsx packages/sdk/examples/node-http.ts
 */
import { randomBytes } from 'node:crypto';
import {
  createMaestrano,
  type LoginArgs,
  type Maestrano,
  memoryAdapter,
  type ProvisioningHooks,
  type SsoSession,
  tenantsFromFile,
} from '@org/maestrano-sdk';

interface Company {
  id: string;
  tenant: string;
  name: string;
  groupId: string;
}
interface User {
  id: string;
  /** The marketplace (tenant) the user came from: users of one marketplace are not another's. */
  tenant: string;
  email: string;
  name: string;
  companies: Map<string, string>;
}

export const companies = new Map<string, Company>();
export const users = new Map<string, User>();

/** Server-side sessions: the cookie holds only a random id. */
export const sessions = new Map<string, { userId: string; companyId: string; sso: SsoSession }>();

const provisioning: ProvisioningHooks = {
  // Upsert on the idempotency key: the SDK may call a hook again when an earlier attempt's
  // outcome was not recorded.
  createCompany: async (group, ctx) => {
    // Group uids are per marketplace: the same uid on another marketplace is another company.
    for (const c of companies.values()) if (c.tenant === ctx.tenant.name && c.groupId === group.uid) return { id: c.id };
    const id = `co_${companies.size + 1}`;
    companies.set(id, { id, tenant: ctx.tenant.name, name: group.name, groupId: group.uid });
    ctx.logger.info('company created', { id, tenant: ctx.tenant.name });
    return { id };
  },
  createUser: async (user, company) => {
    const id = `us_${users.size + 1}`;
    const name = `${user.firstName} ${user.lastName}`;
    users.set(id, { id, tenant: company.tenant, email: user.appEmail, name, companies: new Map([[company.id, 'Member']]) });
    return { id };
  },
  // Only when emails are unique in the app (checklist 1.4.1), and only among the users of
  // this marketplace: another marketplace's IdP must not sign in as one of them.
  findUserByEmail: async (email, ctx) => {
    for (const u of users.values()) if (u.tenant === ctx.tenant.name && u.email.toLowerCase() === email.toLowerCase()) return { id: u.id };
    return null;
  },
  addMembership: async (user, company, role) => {
    users.get(user.id)?.companies.set(company.id, role);
  },
};

/** Sets the app's session and sends the user home. */
async function onLogin({ user, company, session }: LoginArgs): Promise<Response> {
  const sid = randomBytes(24).toString('base64url');
  sessions.set(sid, { userId: user.id, companyId: company.id, sso: session });
  return new Response(null, {
    status: 302,
    headers: { location: '/', 'set-cookie': `sid=${sid}; Path=/; HttpOnly; SameSite=Lax` },
  });
}

/** Builds the SDK from `maestrano.json` (the dev-platform `{marketplaces:[...]}` document). */
export async function buildMaestrano(configFile: string): Promise<Maestrano> {
  return createMaestrano({
    tenants: await tenantsFromFile(configFile),
    storage: memoryAdapter(), // production: prismaAdapter(prisma) from @org/maestrano-adapter-prisma
    provisioning,
    onLogin,
  });
}

function sessionId(cookieHeader: string | null): string | undefined {
  return cookieHeader
    ?.split(';')
    .map((c) => c.trim().split('='))
    .find(([name]) => name === 'sid')?.[1];
}

/** The app's own pages: a home page that re-checks the Maestrano session, and logout. */
export async function appPage(mno: Maestrano, request: Request): Promise<Response> {
  const url = new URL(request.url);
  const sid = sessionId(request.headers.get('cookie'));
  const current = sid ? sessions.get(sid) : undefined;
  if (url.pathname === '/logout' && current && sid) {
    sessions.delete(sid);
    return new Response(null, { status: 302, headers: { location: mno.sso.logoutUrl(current.sso) } });
  }
  if (!current || !sid) return new Response('Not logged in: start from the Maestrano marketplace.', { status: 401 });
  // At most one call to the IdP per recheck period (3 minutes).
  const check = await mno.sso.checkSession(current.sso);
  if (!check.valid) {
    sessions.delete(sid);
    return new Response(null, { status: 302, headers: { location: check.initUrl ?? '/' } });
  }
  current.sso = check.session;
  const user = users.get(current.userId);
  const company = companies.get(current.companyId);
  return new Response(`Hello ${user?.name ?? '?'} (${company?.name ?? '?'})`, { headers: { 'content-type': 'text/plain' } });
}
