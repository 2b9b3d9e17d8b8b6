/**
 * Everything Maestrano-specific of the guides' example app: tenants, storage, provisioning
 * hooks, the app session set at login, the subscription plan and the connector.
 */
import { randomUUID } from 'node:crypto';
import {
  createMaestrano,
  defineConnector,
  type Maestrano,
  memoryAdapter,
  type SsoUser,
  type StorageAdapter,
  type TenantRegistry,
} from '@org/maestrano-sdk';
import { contactsEntity } from './connector.js';
import type { Db } from './db.js';

export interface AppMaestranoOptions {
  db: Db;
  tenants: TenantRegistry;
  /** Default: in memory (tests, demos). Production: a Prisma or MongoDB adapter. */
  storage?: StorageAdapter;
}

export const SESSION_COOKIE = 'app_sid';

export function createAppMaestrano({ db, tenants, storage = memoryAdapter() }: AppMaestranoOptions): Maestrano {
  /** Runs `create` once per idempotency key: a hook called again returns the same record. */
  const once = (key: string, create: () => string): string => {
    const existing = db.keys.get(key);
    if (existing) return existing;
    const id = create();
    db.keys.set(key, id);
    return id;
  };

  return createMaestrano({
    tenants,
    storage,
    // #region provisioning
    provisioning: {
      // A group seen for the first time becomes a company of the app (checklist 1.2.1).
      createCompany: (group, ctx) => {
        const id = once(ctx.idempotencyKey, () => {
          const companyId = `co_${randomUUID()}`;
          db.companies.set(companyId, { id: companyId, tenant: ctx.tenant.name, groupId: group.uid, name: group.name, active: true });
          return companyId;
        });
        return { id };
      },
      // A user seen for the first time (1.2.2, 1.2.3).
      createUser: (user, _company, ctx) => {
        const id = once(ctx.idempotencyKey, () => {
          const userId = `us_${randomUUID()}`;
          db.users.set(userId, { id: userId, tenant: ctx.tenant.name, email: user.appEmail, firstName: user.firstName, lastName: user.lastName, blocked: false });
          return userId;
        });
        return { id };
      },
      // Emails are unique in this app: an unknown uid with a known email is linked (1.4.1).
      // Only to a user of the same marketplace: another marketplace's IdP must not sign in as one.
      // One mailbox whatever its case: compare emails case-insensitively.
      findUserByEmail: (email, ctx) => {
        const user = [...db.users.values()].find((u) => u.tenant === ctx.tenant.name && u.email.toLowerCase() === email.toLowerCase());
        return user ? { id: user.id } : null;
      },
      // New membership or changed role, reconciled on every login. Also the only hook a user
      // blocked by `blockUser` reaches when Maestrano adds them back: undo the block here.
      addMembership: (user, company, role) => {
        db.memberships.set(`${user.id}:${company.id}`, role);
        const row = db.users.get(user.id);
        if (row) row.blocked = false;
      },
      // Account webhooks: the group was cancelled (2.2.1), a member was removed (2.2.2).
      cancelCompany: (company) => {
        const row = db.companies.get(company.id);
        if (row) row.active = false;
        for (const [sid, s] of db.sessions) if (s.companyId === company.id) db.sessions.delete(sid);
      },
      removeMembership: (user, company) => {
        db.memberships.delete(`${user.id}:${company.id}`);
        for (const [sid, s] of db.sessions) if (s.userId === user.id && s.companyId === company.id) db.sessions.delete(sid);
      },
      // The removed member has no group left (undone by addMembership when they come back).
      blockUser: (user) => {
        const row = db.users.get(user.id);
        if (row) row.blocked = true;
        for (const [sid, s] of db.sessions) if (s.userId === user.id) db.sessions.delete(sid);
      },
    },
    // #endregion provisioning
    // #region on-login
    // After a valid SAML response and provisioning: start the app's own session.
    onLogin: ({ user, company, session }) => {
      // The user's email and names as Maestrano has them now (see "When a user's email changes").
      refreshProfile(db, user.id, user.profile);
      const sid = randomUUID();
      db.sessions.set(sid, { userId: user.id, companyId: company.id, maestrano: session });
      return new Response(null, {
        status: 303,
        headers: { location: '/contacts', 'set-cookie': `${SESSION_COOKIE}=${sid}; Path=/; HttpOnly; SameSite=Lax` },
      });
    },
    // #endregion on-login
    // #region billing
    billing: {
      // One recurring bill per new company, starting after Maestrano's free trial and ours.
      onCompanyCreated: (_company, group) => ({
        priceCents: 1900,
        description: 'Example app (monthly)',
        currency: group.currency ?? 'AUD',
        period: 'Month',
        appTrialDays: 14,
      }),
    },
    // #endregion billing
    // #region connector
    connector: defineConnector({ entities: [contactsEntity(db)] }),
    sync: { pageSize: 100 },
    // #endregion connector
  });
}

// #region profile
/**
 * Maestrano sends the user's current email and names with every login, and users change them
 * there (the uid stays). Keep the stored copy in step: `findUserByEmail` links an unknown uid to
 * the user holding the email it asserts, so a user left with an old address would be handed to
 * whoever registers that address at Maestrano next.
 */
export function refreshProfile(db: Db, userId: string, profile: SsoUser): void {
  const row = db.users.get(userId);
  if (!row) return;
  row.firstName = profile.firstName;
  row.lastName = profile.lastName;
  const email = profile.appEmail;
  if (row.email === email) return;
  // Emails are unique in this app. When another user of the marketplace holds the new one (a
  // user from before Maestrano, or one whose own email changed and who has not signed in since),
  // keep the stored email rather than take it from that user or refuse this login; tell an operator.
  const taken = [...db.users.values()].some((u) => u.id !== userId && u.tenant === row.tenant && u.email.toLowerCase() === email.toLowerCase());
  if (taken) console.warn(`user ${userId}: the email Maestrano asserts belongs to another user; the stored one is kept`);
  else row.email = email;
}
// #endregion profile
