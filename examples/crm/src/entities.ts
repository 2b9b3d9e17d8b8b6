/**
 * The CRM's connector: Connec! people <-> contacts and organizations <-> accounts.
 * Mappers are pure; every write goes through the `local` store functions.
 */
import { createHash } from 'node:crypto';
import { defineConnector, defineEntity, type LocalContext } from '@org/maestrano-sdk';
import type { CrmPrisma } from './db.js';

/** The CRM-side shape of a contact as the mappers see it. */
export interface ContactData {
  id?: string;
  firstName: string | null;
  lastName: string;
  email: string | null;
  phone: string | null;
  jobTitle: string | null;
  /** The CRM's account id (the engine swaps Connec! ids for ours). */
  accountId: string | null;
  updatedAt?: Date;
}

export interface AccountData {
  id?: string;
  name: string;
  industry: string | null;
  email: string | null;
  phone: string | null;
  updatedAt?: Date;
}

/**
 * The CRM's last name of a Connec! person who has none (the CRM requires one). It is only a
 * placeholder: pushed back, it goes out as no last name, never as the person's name.
 */
export const NO_LAST_NAME = '(no last name)';

/** Connec! sends unset text as absent, null or blank; a reference arrives as our id (string) or null. */
const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : null);

/**
 * A deterministic id per operation (a Connec! record's create, a Maestrano login's
 * `createUser`), so a create repeated after a crash (same idempotency key) finds the row it
 * already wrote instead of inserting a second one.
 */
export function stableId(prefix: string, ctx: Pick<LocalContext, 'idempotencyKey'>): string {
  return `${prefix}_${createHash('sha256').update(ctx.idempotencyKey).digest('hex').slice(0, 20)}`;
}

/**
 * Inserts a row whose id comes from the idempotency key: an existing row is the earlier
 * attempt's, kept as it is. One INSERT, not an upsert: Prisma runs an upsert on SQLite as
 * `BEGIN; SELECT; INSERT`, and a transaction that read before writing fails at once with
 * SQLITE_BUSY (no busy wait) when another process (a second worker) writes meanwhile.
 */
export async function insertOnce(insert: Promise<unknown>): Promise<void> {
  try {
    await insert;
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
  }
}

/** Prisma's unique-constraint refusal (P2002). */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'P2002';
}

async function companyIdOf(prisma: CrmPrisma, ctx: LocalContext): Promise<string> {
  const company = await prisma.company.findUnique({
    where: { tenant_groupId: { tenant: ctx.tenant, groupId: ctx.groupId } },
    select: { id: true },
  });
  if (!company) throw new Error(`no CRM company for ${ctx.tenant}/${ctx.groupId} yet`);
  return company.id;
}

export function crmConnector(prisma: CrmPrisma) {
  const accounts = defineEntity<'organizations', AccountData>({
    name: 'accounts',
    connec: 'organizations',
    direction: 'both',
    toLocal: (org) => ({
      name: str(org.name) ?? '(unnamed organization)',
      industry: str(org.industry),
      email: str(org.email?.address),
      // The CRM's one phone is the landline, read and written back as such (a mobile shown
      // here would be written back as a landline, and never cleared in Connec!).
      phone: str(org.phone?.landline),
    }),
    toConnec: (account) => ({
      name: account.name,
      ...(account.industry ? { industry: account.industry } : {}),
      ...(account.email ? { email: { address: account.email } } : {}),
      ...(account.phone ? { phone: { landline: account.phone } } : {}),
    }),
    localId: (account) => account.id ?? '',
    localUpdatedAt: (account) => account.updatedAt ?? null,
    matchingFields: ['name'],
    local: {
      create: async (data, ctx) => {
        const id = stableId('acc', ctx);
        const companyId = await companyIdOf(prisma, ctx);
        await insertOnce(prisma.account.create({ data: { id, companyId, name: data.name, industry: data.industry, email: data.email, phone: data.phone } }));
        return { id };
      },
      // Every lookup is scoped to the company of the group being synced: a row of another
      // company is never read or written, whatever id arrives.
      update: async (id, data, ctx) => {
        const { count } = await prisma.account.updateMany({
          where: { id, companyId: await companyIdOf(prisma, ctx) },
          data: { name: data.name, industry: data.industry, email: data.email, phone: data.phone },
        });
        return count === 0 ? { gone: true } : undefined;
      },
      get: async (id, ctx) => {
        const a = await prisma.account.findFirst({ where: { id, companyId: await companyIdOf(prisma, ctx) } });
        return a && { id: a.id, name: a.name, industry: a.industry, email: a.email, phone: a.phone, updatedAt: a.updatedAt };
      },
    },
  });

  const contacts = defineEntity<'people', ContactData>({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    references: { organization_id: 'accounts' },
    toLocal: (person) => ({
      firstName: str(person.first_name),
      lastName: str(person.last_name) ?? NO_LAST_NAME,
      email: str(person.email?.address),
      // The work landline only: it is what `toConnec` writes back (see the accounts).
      phone: str(person.phone_work?.landline),
      jobTitle: str(person.job_title),
      accountId: str(person.organization_id),
    }),
    // Cleared fields go out as null: a push merges into the Connec! record, so a field left
    // out would keep its old value there (and come back with the next change from Connec!).
    toConnec: (contact) => ({
      first_name: contact.firstName ?? '',
      last_name: contact.lastName === NO_LAST_NAME ? null : contact.lastName,
      job_title: contact.jobTitle ?? null,
      email: { address: contact.email ?? null },
      phone_work: { landline: contact.phone ?? null },
      organization_id: contact.accountId ?? null,
    }),
    localId: (contact) => contact.id ?? '',
    localUpdatedAt: (contact) => contact.updatedAt ?? null,
    local: {
      create: async (data, ctx) => {
        const id = stableId('ct', ctx);
        const companyId = await companyIdOf(prisma, ctx);
        await insertOnce(prisma.contact.create({ data: { id, companyId, ...fields(data) } }));
        return { id };
      },
      update: async (id, data, ctx) => {
        const { count } = await prisma.contact.updateMany({ where: { id, companyId: await companyIdOf(prisma, ctx) }, data: fields(data) });
        return count === 0 ? { gone: true } : undefined;
      },
      get: async (id, ctx) => {
        const c = await prisma.contact.findFirst({ where: { id, companyId: await companyIdOf(prisma, ctx) } });
        return c && toContactData(c);
      },
      // The company's contacts, for the outbound half of an import and for the catch-up the
      // SDK runs when Maestrano switches the sync back on (edits saved while it was off).
      async *list(ctx) {
        const companyId = await companyIdOf(prisma, ctx);
        let after: string | undefined;
        for (;;) {
          const page = await prisma.contact.findMany({ where: { companyId, ...(after ? { id: { gt: after } } : {}) }, orderBy: { id: 'asc' }, take: 200 });
          if (page.length === 0) return;
          yield page.map(toContactData);
          after = page[page.length - 1]?.id;
        }
      },
    },
  });

  return defineConnector({ entities: [accounts, contacts] });
}

function fields(data: ContactData) {
  return {
    firstName: data.firstName,
    lastName: data.lastName,
    email: data.email,
    phone: data.phone,
    jobTitle: data.jobTitle,
    accountId: data.accountId,
  };
}

export function toContactData(c: {
  id: string;
  firstName: string | null;
  lastName: string;
  email: string | null;
  phone: string | null;
  jobTitle: string | null;
  accountId: string | null;
  updatedAt: Date;
}): ContactData {
  return {
    id: c.id,
    firstName: c.firstName,
    lastName: c.lastName,
    email: c.email,
    phone: c.phone,
    jobTitle: c.jobTitle,
    accountId: c.accountId,
    updatedAt: c.updatedAt,
  };
}
