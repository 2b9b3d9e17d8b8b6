/**
 * The app of the CONNECTORS.md §F scenario tests: companies (organizations), contacts (people),
 * items, invoices with lines (sub-records) and the singular company, kept in memory per group
 * (each scenario provisions its own group), with write counters so a test can assert "no
 * second write". Storage under test is the SDK's (memory, PostgreSQL, SQLite, MongoDB); the
 * app's own tables need not be shared with other processes here.
 */
import { defineConnector, defineEntity } from '@org/maestrano-sdk';

export interface ScenarioContact {
  id?: string;
  firstName: string;
  lastName: string;
  jobTitle: string | null;
  companyId: string | null;
  updatedAt: Date;
}
export interface ScenarioLine {
  id: string | null;
  itemId: string | null;
  description: string | null;
}
export interface ScenarioInvoice {
  id: string;
  number: string;
  contactId: string | null;
  lines: ScenarioLine[];
}
export interface ScenarioSettings {
  id?: string;
  name: string;
  email: string | null;
  billingLine1: string | null;
}

/** One group's tables. */
export class GroupTables {
  companies = new Map<string, { id: string; name: string }>();
  contacts = new Map<string, ScenarioContact & { id: string }>();
  items = new Map<string, { id: string; name: string; archived: boolean }>();
  invoices = new Map<string, ScenarioInvoice>();
  settings = new Map<string, ScenarioSettings & { id: string }>();
  writes = { create: 0, update: 0 };
  /** Local ids deleted in the app: an update of one answers "gone". */
  deleted = new Set<string>();
}

export class ScenarioApp {
  readonly #groups = new Map<string, GroupTables>();
  /** idempotency key -> local id (creates are exactly-once, as the SDK asks). */
  readonly #keys = new Map<string, string>();
  #seq = 0;
  /** The contact mapper throws for this last name (a per-record mapper bug). */
  poisonLastName: string | null = null;

  group(groupId: string): GroupTables {
    let tables = this.#groups.get(groupId);
    if (!tables) {
      tables = new GroupTables();
      this.#groups.set(groupId, tables);
    }
    return tables;
  }
  nextId(prefix: string): string {
    this.#seq++;
    return `${prefix}-${this.#seq}`;
  }
  /** The row created earlier under `key`, or a new one. */
  create<T extends { id: string }>(groupId: string, table: (t: GroupTables) => Map<string, T>, prefix: string, key: string, make: (id: string) => T): { id: string; row: T } {
    const tables = this.group(groupId);
    const had = this.#keys.get(key);
    const existing = had ? table(tables).get(had) : undefined;
    if (existing) return { id: existing.id, row: existing };
    const id = this.nextId(prefix);
    const row = make(id);
    table(tables).set(id, row);
    this.#keys.set(key, id);
    tables.writes.create++;
    return { id, row };
  }
  /** Replaces a row; false when it is gone. */
  update<T extends { id: string }>(groupId: string, table: (t: GroupTables) => Map<string, T>, id: string, change: (row: T) => T): boolean {
    const tables = this.group(groupId);
    const row = table(tables).get(id);
    if (!row || tables.deleted.has(id)) return false;
    table(tables).set(id, change(row));
    tables.writes.update++;
    return true;
  }
}

type Person = { first_name?: string | null; last_name?: string | null; job_title?: string | null; organization_id?: unknown };
type LineIn = { id?: unknown; item_id?: unknown; description?: unknown };

export function scenarioConnector(app: ScenarioApp) {
  const companies = defineEntity({
    name: 'companies',
    connec: 'organizations',
    direction: 'inbound',
    toLocal: (org: Record<string, unknown>) => ({ name: typeof org.name === 'string' ? org.name : '' }),
    local: {
      create: async (data, ctx) => ({ id: app.create(ctx.groupId, (t) => t.companies, 'org', ctx.idempotencyKey, (id) => ({ id, name: data.name })).id }),
      update: async (id, data, ctx) => (app.update(ctx.groupId, (t) => t.companies, id, (row) => ({ ...row, name: data.name })) ? undefined : { gone: true }),
    },
  });
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    references: { organization_id: 'companies' },
    toLocal: (p: Person): ScenarioContact => {
      if (app.poisonLastName !== null && p.last_name === app.poisonLastName) throw new Error('mapper bug: cannot map this person');
      return {
        firstName: p.first_name ?? '',
        lastName: p.last_name ?? '',
        jobTitle: p.job_title ?? null,
        companyId: typeof p.organization_id === 'string' ? p.organization_id : null,
        updatedAt: new Date(0),
      };
    },
    toConnec: (c: ScenarioContact) => ({ first_name: c.firstName, last_name: c.lastName, job_title: c.jobTitle, organization_id: c.companyId }),
    localId: (c: ScenarioContact) => c.id ?? '',
    localUpdatedAt: (c: ScenarioContact) => c.updatedAt,
    // The app's "do not share" flag.
    shouldPush: (c: ScenarioContact) => !c.lastName.startsWith('Private'),
    local: {
      create: async (data, ctx) => ({ id: app.create(ctx.groupId, (t) => t.contacts, 'per', ctx.idempotencyKey, (id) => ({ ...data, id })).id }),
      // An inbound write keeps the app's own edit time: only the app's edits move it.
      update: async (id, data, ctx) =>
        app.update(ctx.groupId, (t) => t.contacts, id, (row) => ({ ...row, ...data, updatedAt: row.updatedAt, id })) ? undefined : { gone: true },
      get: async (id, ctx) => app.group(ctx.groupId).contacts.get(id) ?? null,
    },
  });
  const items = defineEntity({
    name: 'items',
    connec: 'items',
    direction: 'inbound',
    toLocal: (item: Record<string, unknown>) => ({ name: String(item.name ?? ''), archived: item.status === 'INACTIVE' }),
    local: {
      create: async (data, ctx) => ({ id: app.create(ctx.groupId, (t) => t.items, 'sku', ctx.idempotencyKey, (id) => ({ ...data, id })).id }),
      update: async (id, data, ctx) => (app.update(ctx.groupId, (t) => t.items, id, (row) => ({ ...row, ...data, id })) ? undefined : { gone: true }),
    },
  });
  const invoices = defineEntity({
    name: 'invoices',
    connec: 'invoices',
    direction: 'inbound',
    references: { person_id: 'contacts', 'lines/item_id': 'items' },
    subRecords: ['lines'],
    toLocal: (inv: Record<string, unknown>): Omit<ScenarioInvoice, 'id'> => ({
      number: String(inv.transaction_number ?? ''),
      contactId: typeof inv.person_id === 'string' ? inv.person_id : null,
      lines: (Array.isArray(inv.lines) ? (inv.lines as LineIn[]) : []).map((l) => ({
        id: typeof l.id === 'string' ? l.id : null,
        itemId: typeof l.item_id === 'string' ? l.item_id : null,
        description: typeof l.description === 'string' ? l.description : null,
      })),
    }),
    local: {
      create: async (data, ctx) => {
        const { id, row } = app.create(ctx.groupId, (t) => t.invoices, 'inv', ctx.idempotencyKey, (id) => ({
          ...data,
          id,
          lines: data.lines.map((l) => ({ ...l, id: app.nextId('ln') })),
        }));
        return { id, subIds: { lines: row.lines.map((l) => l.id) } };
      },
      update: async (id, data, ctx) => {
        const lines = data.lines.map((l) => ({ ...l, id: l.id ?? app.nextId('ln') }));
        if (!app.update(ctx.groupId, (t) => t.invoices, id, (row) => ({ ...row, ...data, lines, id }))) return { gone: true };
        return { subIds: { lines: lines.map((l) => l.id) } };
      },
    },
  });
  const company = defineEntity({
    name: 'company',
    connec: 'company',
    direction: 'both',
    toLocal: (c: Record<string, unknown>): ScenarioSettings => {
      const address = (c.address ?? {}) as { billing?: { line1?: string } };
      const email = (c.email ?? {}) as { address?: string };
      return { name: String(c.name ?? ''), email: email.address ?? null, billingLine1: address.billing?.line1 ?? null };
    },
    // Sparse on purpose: empty sub-objects are what the engine must not send.
    toConnec: (s: ScenarioSettings) => ({
      name: s.name,
      email: { address: s.email ?? undefined },
      address: { billing: { line1: s.billingLine1 ?? undefined }, billing2: {}, shipping: {} },
    }),
    localId: (s: ScenarioSettings) => s.id ?? '',
    local: {
      create: async (data, ctx) => ({ id: app.create(ctx.groupId, (t) => t.settings, 'settings', ctx.idempotencyKey, (id) => ({ ...data, id })).id }),
      update: async (id, data, ctx) => (app.update(ctx.groupId, (t) => t.settings, id, (row) => ({ ...row, ...data, id })) ? undefined : { gone: true }),
    },
  });
  return defineConnector({ entities: [company, companies, contacts, items, invoices] });
}
