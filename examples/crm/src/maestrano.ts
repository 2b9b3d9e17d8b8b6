/**
 * Everything Maestrano-specific in the CRM: tenants, storage, provisioning hooks, the
 * session set at login, billing and the connector. The rest of the app never talks SAML,
 * webhooks or Connec! directly.
 */
import { randomBytes } from 'node:crypto';
import { prismaAdapter } from '@org/maestrano-adapter-prisma';
import { createMaestrano, type Logger, type Maestrano, type SsoUser, tenantsFromFile } from '@org/maestrano-sdk';
import type { Database } from './db.js';
import { crmConnector, insertOnce, isUniqueViolation, stableId } from './entities.js';
import { ssoFailedPage } from './views.js';

export const SESSION_COOKIE = 'crm_sid';
export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;

/**
 * Why Maestrano ended a session before its expiry, stored on the session row. An ended session
 * grants nothing; it is kept (until it would have expired) so that its user's next request
 * says why instead of showing the plain sign-in page.
 */
export type SessionEndedReason = 'company_cancelled' | 'access_removed';

/** Acme CRM's plan: 29.00 per month after a 14-day app trial (and never before Maestrano's own trial ends). */
export const PLAN = { priceCents: 2900, description: 'Acme CRM Team plan (monthly)', appTrialDays: 14 } as const;
/** The "export contacts" action, billed ad hoc through Maestrano. */
export const EXPORT_PRICE_CENTS = 500;

export interface CrmMaestranoOptions {
  db: Database;
  /** Path of the dev-platform `{marketplaces:[...]}` document. */
  configFile: string;
  logger?: Logger;
  /** Secure cookies (https deployments). */
  secureCookies?: boolean;
}

export function sessionCookie(id: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}

export async function createCrmMaestrano(options: CrmMaestranoOptions): Promise<Maestrano> {
  const { prisma, provider } = options.db;
  // Ends the live sessions matching `where`; a session ended earlier keeps its first reason.
  const endSessions = (where: { userId?: string; companyId?: string }, reason: SessionEndedReason) =>
    prisma.session.updateMany({ where: { ...where, endedReason: null }, data: { endedReason: reason } });
  const mno: Maestrano = createMaestrano({
    tenants: await tenantsFromFile(options.configFile),
    storage: prismaAdapter(prisma, { provider }),
    ...(options.logger ? { logger: options.logger } : {}),
    // A failed sign-in gets a page with the reason and a way back, not a bare JSON error.
    sso: { onError: (error) => new Response(ssoFailedPage(error.message), { status: error.status, headers: { 'content-type': 'text/html; charset=utf-8' } }) },
    provisioning: {
      // 1.2.1: a new Maestrano group becomes a CRM company. The id is derived from the
      // idempotency key, so a retried call upserts the same row. The company keeps the
      // group's currency, so ad-hoc charges are billed in the subscription's currency.
      createCompany: async (group, ctx) => {
        const currency = group.currency ?? 'AUD';
        // One INSERT, then a read of the row an earlier attempt wrote (see `insertOnce`).
        await insertOnce(
          prisma.company.create({ data: { id: `co_${randomBytes(8).toString('hex')}`, name: group.name, tenant: ctx.tenant.name, groupId: group.uid, currency } }),
        );
        const company = await prisma.company.findUniqueOrThrow({ where: { tenant_groupId: { tenant: ctx.tenant.name, groupId: group.uid } }, select: { id: true } });
        return { id: company.id };
      },
      // 1.2.2 / 1.2.3. Emails are unique in the CRM (stored lower-cased: `Alice@DoeCorp.com`
      // and `alice@doecorp.com` are one mailbox), so a row with this email may already exist.
      // The row's id comes from the idempotency key (`mno:user:<tenant>:<uid>`), so it says which
      // login created it: a row with this login's id is a retried call of this login (its first
      // attempt wrote the row, then failed before the SDK recorded the uid), any other row is
      // someone else's. findUserByEmail below has already passed over a row this uid may take,
      // so the login is refused rather than handing that account over; a separate user cannot
      // be created, as the email is the CRM's unique key for a user.
      createUser: async (user, company, ctx) => {
        const email = normalEmail(user.appEmail);
        const id = provisionedUserId(ctx.idempotencyKey);
        // Looked up by its id first: the retry may assert another email (changed at Maestrano
        // since the first attempt), and creating the row again would fail on its id every time.
        if (await prisma.user.findUnique({ where: { id }, select: { id: true } })) return { id };
        const existing = await prisma.user.findUnique({ where: { email } });
        if (existing) {
          if (existing.id !== id) throw new Error('crm: this email belongs to the account of another user');
          return { id };
        }
        const created = await prisma.user.create({ data: { id, email, firstName: user.firstName, lastName: user.lastName } });
        ctx.logger.info('crm: user created', { userId: created.id, companyId: company.id });
        return { id: created.id };
      },
      // 1.4.1: emails are unique in the CRM, so an unknown uid with a known email is linked,
      // but only inside one marketplace: a user some other marketplace signed in is out of
      // reach (that marketplace's IdP, not this one, vouches for it, and an IdP can assert any
      // uid and email). Nor is a row another Maestrano login created and never finished (its
      // first login failed after createUser): no uid is linked to it yet, so "no other
      // marketplace" cannot tell whose it is, and another marketplace's IdP asserting the email
      // would take it and lock its owner out. Only that login's retry gets it, through
      // createUser. Rows the CRM had before Maestrano (no uid linked) are linked to the first
      // marketplace user asserting their email.
      findUserByEmail: async (email, ctx) => {
        const user = await prisma.user.findUnique({ where: { email: normalEmail(email) }, select: { id: true } });
        if (!user) return null;
        const elsewhere = await prisma.maestranoUser.count({ where: { userId: user.id, tenant: { not: ctx.tenant.name } } });
        if (elsewhere > 0) return null;
        if (isProvisionedUserId(user.id) && (await prisma.maestranoUser.count({ where: { userId: user.id } })) === 0) return null;
        return user;
      },
      addMembership: async (user, company, role) => {
        // Single statements (see `insertOnce`): update the membership, or insert it.
        const { count } = await prisma.membership.updateMany({ where: { userId: user.id, companyId: company.id }, data: { role, active: true } });
        if (count === 0) {
          await insertOnce(prisma.membership.create({ data: { userId: user.id, companyId: company.id, role, active: true } }));
          await prisma.membership.updateMany({ where: { userId: user.id, companyId: company.id }, data: { role, active: true } });
        }
        await prisma.user.update({ where: { id: user.id }, data: { status: 'active' } });
      },
      // 2.2.1: the group left the marketplace: the company is cancelled and its sessions end
      // (kept, marked with the reason, for the message on their next request).
      cancelCompany: async (company) => {
        await prisma.company.update({ where: { id: company.id }, data: { status: 'cancelled' } });
        await endSessions({ companyId: company.id }, 'company_cancelled');
      },
      // 2.2.2: a member was removed from the group: no more access to this company.
      removeMembership: async (user, company) => {
        await prisma.membership.updateMany({ where: { userId: user.id, companyId: company.id }, data: { active: false } });
        await endSessions({ userId: user.id, companyId: company.id }, 'access_removed');
      },
      // ... and that was the user's last group in this marketplace: it is blocked when no
      // active membership of any company is left to it (a CRM user belongs to one marketplace,
      // see createUser, but possibly to several of its companies).
      blockUser: async (user) => {
        const stillActive = await prisma.membership.count({ where: { userId: user.id, active: true } });
        if (stillActive > 0) return;
        await prisma.user.update({ where: { id: user.id }, data: { status: 'blocked' } });
        await endSessions({ userId: user.id }, 'access_removed');
      },
    },
    // After a successful SSO: the user's email and names as Maestrano has them now (see
    // `refreshProfile`), then a server-side session (the cookie holds only a random id).
    onLogin: async ({ user, company, session, returnTo }) => {
      await refreshProfile(prisma, user.id, user.profile, mno.runtime.logger);
      const id = randomBytes(24).toString('base64url');
      await prisma.session.create({
        data: {
          id,
          userId: user.id,
          companyId: company.id,
          tenant: session.tenant,
          maestrano: { ...session },
          expiresAt: new Date(Date.now() + SESSION_TTL_MS),
        },
      });
      return new Response(null, {
        status: 303,
        headers: {
          // The page the user asked for before signing in (a path of this origin, checked by
          // the SDK), or the contact list.
          location: returnTo ?? '/contacts',
          'set-cookie': sessionCookie(id, SESSION_TTL_MS / 1000, options.secureCookies ?? false),
        },
      });
    },
    billing: {
      // 2.1.1: one recurring bill per company; the SDK starts it after the later of
      // Maestrano's free trial and our own 14-day trial.
      onCompanyCreated: (_company, group) => ({
        priceCents: PLAN.priceCents,
        description: PLAN.description,
        currency: group.currency ?? 'AUD',
        period: 'Month',
        appTrialDays: PLAN.appTrialDays,
      }),
    },
    connector: crmConnector(prisma),
  });
  return mno;
}

/**
 * Brings the CRM user's email and names up to what Maestrano asserted at this login. Maestrano
 * sends the user's current profile with every login, and a user can change their email there
 * (the uid stays). The CRM's copy must follow: `findUserByEmail` links an unknown uid to the
 * CRM user holding the email it asserts, so a row left with the old address would be handed to
 * whoever registers that address at Maestrano next (a new uid of the same marketplace).
 *
 * The email is the CRM's unique key of a user, and another row may hold the new one (a CRM user
 * from before Maestrano, or a user whose own email changed at Maestrano since their last sign-in
 * here). Then the stored email stays and a warning says so: moving the email would take it from
 * a user this login knows nothing about, and refusing the login would lock this user out over
 * someone else's row. The names follow either way. Written only when something changed.
 */
async function refreshProfile(prisma: Database['prisma'], userId: string, profile: SsoUser, logger: Logger): Promise<void> {
  const row = await prisma.user.findUnique({ where: { id: userId }, select: { email: true, firstName: true, lastName: true } });
  if (!row) return;
  const email = normalEmail(profile.appEmail);
  const names = { firstName: profile.firstName, lastName: profile.lastName };
  if (row.email !== email) {
    try {
      await prisma.user.update({ where: { id: userId }, data: { email, ...names } });
      return;
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      logger.warn('crm: the email asserted by Maestrano belongs to another CRM user; the stored one is kept', { userId });
    }
  }
  if (row.firstName !== names.firstName || row.lastName !== names.lastName) await prisma.user.update({ where: { id: userId }, data: names });
}

/** The CRM's form of an email: trimmed and lower-cased, so that one mailbox is one user whatever its case. */
export function normalEmail(email: string): string {
  return email.trim().toLowerCase();
}

const PROVISIONED_USER = 'us_mno';

/** The id of the CRM user a Maestrano login creates, from its `createUser` idempotency key: the same for every retry of that login. */
export function provisionedUserId(idempotencyKey: string): string {
  return stableId(PROVISIONED_USER, { idempotencyKey });
}

/** Whether a CRM user was created by a Maestrano login (not one the CRM had before Maestrano). */
function isProvisionedUserId(id: string): boolean {
  return id.startsWith(`${PROVISIONED_USER}_`);
}
